<?php
// GET /v1/messages/status. Usage: RELAYGATE_TOKEN=rgat_... php message_status.php req_01H...
declare(strict_types=1);
require __DIR__ . '/client.php';

if ($argc !== 2) {
    fwrite(STDERR, "usage: php message_status.php <request_id>\n");
    exit(2);
}
relaygate_run(function () use ($argv): int {
    $m = relaygate_request('GET', '/v1/messages/status?' . http_build_query(['request_id' => $argv[1]]));
    $device = $m['device_name'] ?? '-';
    $reason = $m['failure_reason'] ?? '-';
    echo "status={$m['status']} attempts={$m['attempts']} device={$device} failure_reason={$reason}\n";
    return 0;
});
