<?php
// A tiny webhook receiver that verifies relaygate's Standard Webhooks signatures:
// 204 for a genuine event, 401 for anything else.
// Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... php -S 127.0.0.1:8000 webhook_receiver.php
declare(strict_types=1);

const TOLERANCE_SECONDS = 300;

// Throws unless one of the "v1,<sig>" signatures matches and the timestamp is fresh.
function verify_webhook(string $secret, string $body, string $msgId, string $timestamp, string $signatures): void
{
    if ($msgId === '' || $timestamp === '' || $signatures === '') {
        throw new InvalidArgumentException('missing webhook headers');
    }
    if (!ctype_digit($timestamp)) {
        throw new InvalidArgumentException('bad timestamp');
    }
    if (abs(time() - (int) $timestamp) > TOLERANCE_SECONDS) {
        throw new InvalidArgumentException('timestamp too far from now');
    }
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
    $expected = base64_encode(hash_hmac('sha256', "{$msgId}.{$timestamp}.{$body}", $key, true));
    // During a secret rotation there are several signatures, separated by spaces.
    foreach (explode(' ', $signatures) as $candidate) {
        [$version, $signature] = array_pad(explode(',', $candidate, 2), 2, '');
        if ($version === 'v1' && hash_equals($expected, $signature)) {
            return;
        }
    }
    throw new InvalidArgumentException('no matching signature');
}

$log = fopen('php://stdout', 'w');
$secret = getenv('RELAYGATE_WEBHOOK_SECRET') ?: '';
$body = file_get_contents('php://input'); // the raw bytes: verify before decoding
$msgId = $_SERVER['HTTP_WEBHOOK_ID'] ?? '';
try {
    verify_webhook(
        $secret,
        $body,
        $msgId,
        $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '',
        $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '',
    );
} catch (InvalidArgumentException $e) {
    fwrite($log, "rejected: {$e->getMessage()}\n");
    http_response_code(401);
    return;
}
$event = json_decode($body, true);
// De-duplicate by $msgId: retries carry the same webhook-id.
fwrite($log, "verified {$event['type']} id={$msgId}\n");
http_response_code(204);
