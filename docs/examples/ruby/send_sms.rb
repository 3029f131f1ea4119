# frozen_string_literal: true

# POST /v1/sms/send. Usage: RELAYGATE_TOKEN=rgat_... ruby send_sms.rb +998901234567 "Your order #42 shipped"
require "securerandom"
require_relative "relaygate_client"

abort "usage: ruby send_sms.rb <to> <message>" unless ARGV.length == 2
to, message = ARGV

Relaygate.run do
  answer = Relaygate.request(:post, "/v1/sms/send",
                             body: { to: to, message: message },
                             # A retry with the same key never sends a second SMS.
                             headers: { "Idempotency-Key" => SecureRandom.uuid })
  puts "#{answer['status']} request_id=#{answer['request_id']}"
  0
end
