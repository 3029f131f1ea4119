<?php

namespace App\Services;

use RuntimeException;

/** relaygate's error shape: {"ok": false, "error": {"code", "message", "details"}}. */
class RelaygateException extends RuntimeException
{
    public function __construct(
        public readonly string $errorCode,
        string $message,
        public readonly ?array $details = null,
        public readonly int $httpStatus = 0,
    ) {
        parent::__construct($message);
    }
}
