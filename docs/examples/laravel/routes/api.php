<?php

// Add to routes/api.php (API routes have no CSRF check, which a webhook cannot pass).
// Register https://your-app.example/api/relaygate/webhook with POST /v1/webhooks.

use App\Http\Controllers\RelaygateWebhookController;
use App\Http\Middleware\VerifyRelaygateWebhook;
use Illuminate\Support\Facades\Route;

Route::post('/relaygate/webhook', RelaygateWebhookController::class)
    ->middleware(VerifyRelaygateWebhook::class);
