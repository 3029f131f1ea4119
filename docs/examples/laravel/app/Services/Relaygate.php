<?php

namespace App\Services;

use Illuminate\Http\Client\ConnectionException;
use Illuminate\Http\Client\PendingRequest;
use Illuminate\Http\Client\Response;
use Illuminate\Support\Facades\Http;
use Illuminate\Support\Str;

/**
 * The relaygate API through Laravel's HTTP client. Bind it as a singleton or inject it;
 * every refusal becomes a RelaygateException with our error code and message.
 */
class Relaygate
{
    private function client(): PendingRequest
    {
        $request = Http::baseUrl(config('services.relaygate.base_url'))
            ->acceptJson()
            ->connectTimeout(5)
            ->timeout(15);
        $token = config('services.relaygate.token');

        return $token ? $request->withToken($token) : $request;
    }

    /** GET /v1/health (no token). */
    public function health(): array
    {
        return $this->unwrap(fn () => $this->client()->get('/v1/health'));
    }

    /** POST /v1/sms/send; the Idempotency-Key makes a retry of this call safe. */
    public function sendSms(string $to, string $message, ?string $idempotencyKey = null): array
    {
        return $this->unwrap(fn () => $this->client()
            ->withHeaders(['Idempotency-Key' => $idempotencyKey ?? (string) Str::uuid()])
            ->post('/v1/sms/send', ['to' => $to, 'message' => $message]));
    }

    /** GET /v1/messages/status. */
    public function messageStatus(string $requestId): array
    {
        return $this->unwrap(fn () => $this->client()->get('/v1/messages/status', ['request_id' => $requestId]));
    }

    /** POST /v1/otp/send. */
    public function sendOtp(string $to, string $purpose = 'login', int $expiresInSeconds = 300): array
    {
        return $this->unwrap(fn () => $this->client()->post('/v1/otp/send', [
            'to' => $to,
            'purpose' => $purpose,
            'expires_in_seconds' => $expiresInSeconds,
        ]));
    }

    /** POST /v1/otp/verify: status "success", "failed" or "expired". */
    public function verifyOtp(string $otpId, string $code): array
    {
        return $this->unwrap(fn () => $this->client()->post('/v1/otp/verify', ['otp_id' => $otpId, 'code' => $code]));
    }

    /**
     * POST /v1/recipient-lists/queue: every number of the list its own message; the
     * Idempotency-Key makes a retry of this call safe (the list is never queued twice).
     */
    public function queueList(string $listId, string $message, ?string $idempotencyKey = null): array
    {
        return $this->unwrap(fn () => $this->client()
            ->timeout(60) // answered once every item is stored
            ->withHeaders(['Idempotency-Key' => $idempotencyKey ?? (string) Str::uuid()])
            ->post('/v1/recipient-lists/queue', ['list_id' => $listId, 'message' => $message]));
    }

    /** @param callable(): Response $send */
    private function unwrap(callable $send): array
    {
        try {
            $response = $send();
        } catch (ConnectionException $e) {
            throw new RelaygateException('network_error', $e->getMessage());
        }
        $data = $response->json();
        if (! is_array($data) || ($data['ok'] ?? false) !== true) {
            $error = is_array($data) ? ($data['error'] ?? []) : [];
            throw new RelaygateException(
                $error['code'] ?? 'unknown',
                $error['message'] ?? 'HTTP '.$response->status(),
                $error['details'] ?? null,
                $response->status(),
            );
        }

        return $data;
    }
}
