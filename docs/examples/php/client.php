<?php
// A small relaygate API client on PHP's curl extension: base URL and token from the
// environment; API errors become RelaygateError with our error code and message.
declare(strict_types=1);

final class RelaygateError extends RuntimeException
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

function relaygate_request(string $method, string $path, ?array $body = null, array $headers = []): array
{
    $baseUrl = getenv('RELAYGATE_BASE_URL') ?: 'http://127.0.0.1:8080/api';
    $token = getenv('RELAYGATE_TOKEN') ?: null;
    $headers[] = 'Accept: application/json';
    if ($token !== null) {
        $headers[] = 'Authorization: Bearer ' . $token;
    }
    $ch = curl_init($baseUrl . $path);
    $options = [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT => 5,
        CURLOPT_TIMEOUT => 15,
    ];
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        $options[CURLOPT_POSTFIELDS] = json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE);
    }
    $options[CURLOPT_HTTPHEADER] = $headers;
    curl_setopt_array($ch, $options);
    $raw = curl_exec($ch);
    if ($raw === false) {
        $error = curl_error($ch);
        curl_close($ch);
        throw new RelaygateError('network_error', $error);
    }
    $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    $data = json_decode((string) $raw, true);
    if (!is_array($data)) {
        throw new RelaygateError('bad_response', "HTTP $status: $raw", null, $status);
    }
    if (($data['ok'] ?? false) !== true) {
        $error = $data['error'] ?? [];
        throw new RelaygateError(
            (string) ($error['code'] ?? 'unknown'),
            (string) ($error['message'] ?? "HTTP $status"),
            $error['details'] ?? null,
            $status,
        );
    }
    return $data;
}

// Runs $main, printing "error <code>: <message>" to STDERR and exiting 1 on failure.
function relaygate_run(callable $main): void
{
    try {
        exit($main() ?? 0);
    } catch (RelaygateError $e) {
        fwrite(STDERR, "error {$e->errorCode}: {$e->getMessage()}\n");
        if ($e->details !== null) {
            fwrite(STDERR, json_encode($e->details) . "\n");
        }
        exit(1);
    }
}
