<?php
// POST /v1/otp/send. Usage: RELAYGATE_TOKEN=rgat_... php send_otp.php +998901234567 [purpose]
declare(strict_types=1);
require __DIR__ . '/client.php';

if ($argc < 2 || $argc > 3) {
    fwrite(STDERR, "usage: php send_otp.php <to> [purpose]\n");
    exit(2);
}
relaygate_run(function () use ($argv): int {
    $otp = relaygate_request('POST', '/v1/otp/send', [
        'to' => $argv[1],
        'purpose' => $argv[2] ?? 'login',
        'expires_in_seconds' => 300,
    ]);
    echo "otp_id={$otp['otp_id']} status={$otp['status']} expires_in_seconds={$otp['expires_in_seconds']}\n";
    return 0;
});
