<?php

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;
use Symfony\Component\HttpFoundation\Response;

/**
 * Lets a request through only if it is a genuine relaygate webhook (Standard Webhooks):
 * one of the space-separated "v1,<base64 HMAC-SHA256>" signatures in webhook-signature matches
 * "{webhook-id}.{webhook-timestamp}.{raw body}" under the base64-decoded whsec_ secret, and
 * webhook-timestamp is within 5 minutes of now. Anything else is answered 401.
 */
class VerifyRelaygateWebhook
{
    public function handle(Request $request, Closure $next): Response
    {
        $msgId = (string) $request->header('webhook-id', '');
        $timestamp = (string) $request->header('webhook-timestamp', '');
        $signatures = (string) $request->header('webhook-signature', '');
        if ($msgId === '' || ! ctype_digit($timestamp) || $signatures === '') {
            abort(401, 'missing webhook headers');
        }
        if (abs(time() - (int) $timestamp) > config('services.relaygate.webhook_tolerance', 300)) {
            abort(401, 'timestamp too far from now');
        }
        $secret = (string) config('services.relaygate.webhook_secret');
        $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
        // The raw body, exactly as received: never re-encode the parsed JSON.
        $expected = base64_encode(hash_hmac('sha256', "{$msgId}.{$timestamp}.{$request->getContent()}", $key, true));
        foreach (explode(' ', $signatures) as $candidate) {
            [$version, $signature] = array_pad(explode(',', $candidate, 2), 2, '');
            if ($version === 'v1' && hash_equals($expected, $signature)) {
                return $next($request);
            }
        }
        abort(401, 'no matching signature');
    }
}
