# frozen_string_literal: true

# GET /v1/messages/status. Usage: RELAYGATE_TOKEN=rgat_... ruby message_status.rb req_01H...
require_relative "relaygate_client"

abort "usage: ruby message_status.rb <request_id>" unless ARGV.length == 1

Relaygate.run do
  m = Relaygate.request(:get, "/v1/messages/status", query: { request_id: ARGV[0] })
  puts "status=#{m['status']} attempts=#{m['attempts']} device=#{m['device_name'] || '-'} " \
       "failure_reason=#{m['failure_reason'] || '-'}"
  0
end
