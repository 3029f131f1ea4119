# frozen_string_literal: true

# A small relaygate API client on net/http and json (standard library only): base URL and
# token from the environment; API errors raise Relaygate::Error with our code and message.
require "json"
require "net/http"
require "uri"

module Relaygate
  BASE_URL = ENV.fetch("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api")

  class Error < StandardError
    attr_reader :code, :details, :http_status

    def initialize(code, message, details = nil, http_status = nil)
      super(message)
      @code = code
      @details = details
      @http_status = http_status
    end
  end

  # request(:get, "/v1/health") -> Hash; body is JSON-encoded when given.
  def self.request(method, path, body: nil, headers: {}, query: nil)
    uri = URI("#{BASE_URL}#{path}")
    uri.query = URI.encode_www_form(query) if query
    klass = { get: Net::HTTP::Get, post: Net::HTTP::Post }.fetch(method)
    req = klass.new(uri, { "Accept" => "application/json" }.merge(headers))
    token = ENV["RELAYGATE_TOKEN"]
    req["Authorization"] = "Bearer #{token}" if token
    if body
      req["Content-Type"] = "application/json"
      req.body = JSON.generate(body)
    end
    resp = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https",
                                               open_timeout: 5, read_timeout: 15) do |http|
      http.request(req)
    end
    data = begin
      JSON.parse(resp.body.to_s)
    rescue JSON::ParserError
      raise Error.new("bad_response", "HTTP #{resp.code}: #{resp.body}", nil, resp.code.to_i)
    end
    unless data["ok"] == true
      error = data["error"] || {}
      raise Error.new(error["code"], error["message"], error["details"], resp.code.to_i)
    end
    data
  end

  # Runs the block; prints "error <code>: <message>" and exits 1 on failure.
  def self.run
    exit(yield || 0)
  rescue Error => e
    warn "error #{e.code}: #{e.message}"
    warn JSON.generate(e.details) if e.details
    exit 1
  rescue SystemCallError, IOError, Timeout::Error, SocketError => e
    warn "error: #{e.message}"
    exit 1
  end
end
