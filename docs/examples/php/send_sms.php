<?php
// POST /v1/sms/send. Usage: RELAYGATE_TOKEN=rgat_... php send_sms.php +998901234567 "Your order #42 shipped"
declare(strict_types=1);
require __DIR__ . '/client.php';

if ($argc !== 3) {
    fwrite(STDERR, "usage: php send_sms.php <to> <message>\n");
    exit(2);
}
relaygate_run(function () use ($argv): int {
    $answer = relaygate_request(
        'POST',
        '/v1/sms/send',
        ['to' => $argv[1], 'message' => $argv[2]],
        // A retry with the same key never sends a second SMS.
        ['Idempotency-Key: ' . bin2hex(random_bytes(16))],
    );
    echo "{$answer['status']} request_id={$answer['request_id']}\n";
    return 0;
});
