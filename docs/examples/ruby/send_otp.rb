# frozen_string_literal: true

# POST /v1/otp/send. Usage: RELAYGATE_TOKEN=rgat_... ruby send_otp.rb +998901234567 [purpose]
require_relative "relaygate_client"

abort "usage: ruby send_otp.rb <to> [purpose]" unless [1, 2].include?(ARGV.length)
to, purpose = ARGV

Relaygate.run do
  otp = Relaygate.request(:post, "/v1/otp/send",
                          body: { to: to, purpose: purpose || "login", expires_in_seconds: 300 })
  puts "otp_id=#{otp['otp_id']} status=#{otp['status']} expires_in_seconds=#{otp['expires_in_seconds']}"
  0
end
