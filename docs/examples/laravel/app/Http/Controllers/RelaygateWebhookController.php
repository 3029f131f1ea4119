<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Http\Response;
use Illuminate\Support\Facades\Cache;
use Illuminate\Support\Facades\Log;

/** Receives relaygate events once VerifyRelaygateWebhook has checked the signature. */
class RelaygateWebhookController extends Controller
{
    public function __invoke(Request $request): Response
    {
        // Retries carry the same webhook-id: handle each event once.
        $msgId = $request->header('webhook-id');
        if (! Cache::add("relaygate-webhook:{$msgId}", true, now()->addDays(2))) {
            return response()->noContent();
        }
        $event = $request->json()->all();
        match ($event['type']) {
            'message.delivered' => Log::info('sms delivered', ['request_id' => $event['data']['request_id']]),
            'message.failed' => Log::warning('sms failed', [
                'request_id' => $event['data']['request_id'],
                'reason' => $event['data']['failure_reason'],
            ]),
            'otp.verified' => Log::info('otp verified', ['otp_id' => $event['data']['otp_id']]),
            default => Log::info('relaygate event', ['type' => $event['type'], 'id' => $msgId]),
        };

        return response()->noContent(); // any 2xx; anything else makes relaygate retry
    }
}
