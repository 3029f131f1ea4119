# frozen_string_literal: true

# POST /v1/recipient-lists/queue: every number of the list its own message.
# Usage: RELAYGATE_TOKEN=rgat_... ruby queue_list.rb lst_01HV... "Hi {name}, our {city} shop is open"
require "securerandom"
require_relative "relaygate_client"

abort "usage: ruby queue_list.rb <list_id> <message>" unless ARGV.length == 2
list_id, message = ARGV

Relaygate.run do
  answer = Relaygate.request(:post, "/v1/recipient-lists/queue",
                             body: { list_id: list_id, message: message },
                             # A retry with the same key never queues the list twice.
                             headers: { "Idempotency-Key" => SecureRandom.uuid })
  puts "#{answer['status']} batch_id=#{answer['batch_id']} queued=#{answer['queued']} " \
       "skipped=#{answer['skipped_total']}"
  answer["skipped"].each { |s| puts "  skipped #{s['phone']} (#{s['reason']})" }
  0
end
