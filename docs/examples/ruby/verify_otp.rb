# frozen_string_literal: true

# POST /v1/otp/verify; exit status 0 only on "success".
# Usage: RELAYGATE_TOKEN=rgat_... ruby verify_otp.rb otp_01H... 123456
require_relative "relaygate_client"

abort "usage: ruby verify_otp.rb <otp_id> <code>" unless ARGV.length == 2
otp_id, code = ARGV

Relaygate.run do
  result = Relaygate.request(:post, "/v1/otp/verify", body: { otp_id: otp_id, code: code })
  line = "status=#{result['status']} attempts_left=#{result['attempts_left']}"
  line += " reason=#{result['reason']}" if result["reason"]
  puts line
  result["status"] == "success" ? 0 : 1
end
