<?php
// GET /v1/health (no token). Usage: php health.php
declare(strict_types=1);
require __DIR__ . '/client.php';

relaygate_run(function (): int {
    $health = relaygate_request('GET', '/v1/health');
    echo "status={$health['status']} database={$health['database']} version={$health['version']}\n";
    return 0;
});
