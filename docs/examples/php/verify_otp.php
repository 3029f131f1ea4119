<?php
// POST /v1/otp/verify; exit status 0 only on "success".
// Usage: RELAYGATE_TOKEN=rgat_... php verify_otp.php otp_01H... 123456
declare(strict_types=1);
require __DIR__ . '/client.php';

if ($argc !== 3) {
    fwrite(STDERR, "usage: php verify_otp.php <otp_id> <code>\n");
    exit(2);
}
relaygate_run(function () use ($argv): int {
    $result = relaygate_request('POST', '/v1/otp/verify', ['otp_id' => $argv[1], 'code' => $argv[2]]);
    $line = "status={$result['status']} attempts_left={$result['attempts_left']}";
    if (!empty($result['reason'])) {
        $line .= " reason={$result['reason']}";
    }
    echo $line . "\n";
    return $result['status'] === 'success' ? 0 : 1;
});
