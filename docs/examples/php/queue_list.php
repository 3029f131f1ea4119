<?php
// POST /v1/recipient-lists/queue: every number of the list its own message.
// Usage: RELAYGATE_TOKEN=rgat_... php queue_list.php lst_01HV... "Hi {name}, our {city} shop is open"
declare(strict_types=1);
require __DIR__ . '/client.php';

if ($argc !== 3) {
    fwrite(STDERR, "usage: php queue_list.php <list_id> <message>\n");
    exit(2);
}
relaygate_run(function () use ($argv): int {
    $answer = relaygate_request(
        'POST',
        '/v1/recipient-lists/queue',
        ['list_id' => $argv[1], 'message' => $argv[2]],
        // A retry with the same key never queues the list twice.
        ['Idempotency-Key: ' . bin2hex(random_bytes(16))],
    );
    echo "{$answer['status']} batch_id={$answer['batch_id']} queued={$answer['queued']} skipped={$answer['skipped_total']}\n";
    foreach ($answer['skipped'] as $skipped) {
        echo "  skipped {$skipped['phone']} ({$skipped['reason']})\n";
    }
    return 0;
});
