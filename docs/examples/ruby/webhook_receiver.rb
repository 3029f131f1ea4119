# frozen_string_literal: true

# A tiny webhook receiver that verifies relaygate's Standard Webhooks signatures:
# 204 for a genuine event, 401 for anything else. WEBrick ships with Ruby up to 2.7;
# on Ruby 3 run `gem install webrick` (Debian: apt install ruby-webrick).
# Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 ruby webhook_receiver.rb
require "base64"
require "json"
require "openssl"
require "webrick"

SECRET = ENV.fetch("RELAYGATE_WEBHOOK_SECRET")
PORT = Integer(ENV.fetch("PORT", "8000"))
TOLERANCE_SECONDS = 5 * 60

class InvalidSignature < StandardError; end

# Raises InvalidSignature unless one of the "v1,<sig>" signatures matches and the time is fresh.
def verify_webhook(secret, body, msg_id, timestamp, signatures)
  raise InvalidSignature, "missing webhook headers" if [msg_id, timestamp, signatures].any? { |v| v.to_s.empty? }
  raise InvalidSignature, "bad timestamp" unless timestamp.match?(/\A\d+\z/)
  raise InvalidSignature, "timestamp too far from now" if (Time.now.to_i - timestamp.to_i).abs > TOLERANCE_SECONDS

  key = Base64.strict_decode64(secret.delete_prefix("whsec_"))
  expected = Base64.strict_encode64(OpenSSL::HMAC.digest("SHA256", key, "#{msg_id}.#{timestamp}.#{body}"))
  # During a secret rotation there are several signatures, separated by spaces.
  matched = signatures.split(" ").any? do |candidate|
    version, signature = candidate.split(",", 2)
    version == "v1" && !signature.nil? && OpenSSL.secure_compare(signature, expected)
  end
  raise InvalidSignature, "no matching signature" unless matched
end

$stdout.sync = true
server = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: PORT,
                                 Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN), AccessLog: [])
server.mount_proc "/" do |req, res|
  body = req.body.to_s # the raw bytes: verify before parsing
  msg_id = req["webhook-id"].to_s
  begin
    verify_webhook(SECRET, body, msg_id, req["webhook-timestamp"].to_s, req["webhook-signature"].to_s)
    event = JSON.parse(body)
    puts "verified #{event['type']} id=#{msg_id}" # de-duplicate by msg_id: retries reuse it
    res.status = 204
  rescue InvalidSignature => e
    puts "rejected: #{e.message}"
    res.status = 401
  end
end
trap("INT") { server.shutdown }
trap("TERM") { server.shutdown }
puts "listening on http://127.0.0.1:#{PORT}"
server.start
