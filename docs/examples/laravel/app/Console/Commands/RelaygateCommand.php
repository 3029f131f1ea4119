<?php

namespace App\Console\Commands;

use App\Services\Relaygate;
use App\Services\RelaygateException;
use Illuminate\Console\Command;

/**
 * The relaygate examples as one Artisan command:
 *   php artisan relaygate health
 *   php artisan relaygate send-sms +998901234567 "Your order #42 shipped"
 *   php artisan relaygate message-status req_01H...
 *   php artisan relaygate send-otp +998901234567 [purpose]
 *   php artisan relaygate verify-otp otp_01H... 123456
 *   php artisan relaygate queue-list lst_01H... "Hi {name}, our {city} shop is open"
 */
class RelaygateCommand extends Command
{
    protected $signature = 'relaygate {action} {args?*}';

    protected $description = 'Call the relaygate SMS/OTP gateway';

    public function handle(Relaygate $relaygate): int
    {
        $args = $this->argument('args');
        try {
            switch ($this->argument('action')) {
                case 'health':
                    $h = $relaygate->health();
                    $this->line("status={$h['status']} database={$h['database']} version={$h['version']}");

                    return self::SUCCESS;
                case 'send-sms':
                    $answer = $relaygate->sendSms($args[0], $args[1]);
                    $this->line("{$answer['status']} request_id={$answer['request_id']}");

                    return self::SUCCESS;
                case 'message-status':
                    $m = $relaygate->messageStatus($args[0]);
                    $this->line(sprintf(
                        'status=%s attempts=%d device=%s failure_reason=%s',
                        $m['status'],
                        $m['attempts'],
                        $m['device_name'] ?? '-',
                        $m['failure_reason'] ?? '-',
                    ));

                    return self::SUCCESS;
                case 'send-otp':
                    $otp = $relaygate->sendOtp($args[0], $args[1] ?? 'login');
                    $this->line("otp_id={$otp['otp_id']} status={$otp['status']} expires_in_seconds={$otp['expires_in_seconds']}");

                    return self::SUCCESS;
                case 'verify-otp':
                    $r = $relaygate->verifyOtp($args[0], $args[1]);
                    $this->line("status={$r['status']} attempts_left={$r['attempts_left']}".
                        (isset($r['reason']) ? " reason={$r['reason']}" : ''));

                    return $r['status'] === 'success' ? self::SUCCESS : self::FAILURE;
                case 'queue-list':
                    $batch = $relaygate->queueList($args[0], $args[1]);
                    $this->line("{$batch['status']} batch_id={$batch['batch_id']} queued={$batch['queued']} skipped={$batch['skipped_total']}");
                    foreach ($batch['skipped'] as $skipped) {
                        $this->line("  skipped {$skipped['phone']} ({$skipped['reason']})");
                    }

                    return self::SUCCESS;
                default:
                    $this->error('actions: health, send-sms, message-status, send-otp, verify-otp, queue-list');

                    return self::INVALID;
            }
        } catch (RelaygateException $e) {
            $this->error("error {$e->errorCode}: {$e->getMessage()}");
            if ($e->details !== null) {
                $this->error(json_encode($e->details));
            }

            return self::FAILURE;
        }
    }
}
