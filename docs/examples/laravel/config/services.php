<?php

// Add the "relaygate" entry to your application's config/services.php, and to .env:
//   RELAYGATE_BASE_URL=http://127.0.0.1:8080/api
//   RELAYGATE_TOKEN=rgat_...
//   RELAYGATE_WEBHOOK_SECRET=whsec_...

return [
    // ...your other services...

    'relaygate' => [
        'base_url' => env('RELAYGATE_BASE_URL', 'http://127.0.0.1:8080/api'),
        'token' => env('RELAYGATE_TOKEN'),
        'webhook_secret' => env('RELAYGATE_WEBHOOK_SECRET'),
        'webhook_tolerance' => 300, // seconds; reject older or future-dated deliveries
    ],
];
