# frozen_string_literal: true

# GET /v1/health (no token). Usage: ruby health.rb
require_relative "relaygate_client"

Relaygate.run do
  health = Relaygate.request(:get, "/v1/health")
  puts "status=#{health['status']} database=#{health['database']} version=#{health['version']}"
  0
end
