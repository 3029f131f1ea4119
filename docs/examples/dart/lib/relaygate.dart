/// A small relaygate API client on dart:io and dart:convert only, usable from Dart command-line
/// programs and Flutter apps on Android, iOS and desktop (not Flutter web, which has no
/// dart:io). Every refusal throws [RelaygateException] with our error code and message.
library relaygate;

import 'dart:convert';
import 'dart:io';

/// relaygate's error shape: `{"ok": false, "error": {"code", "message", "details"}}`.
class RelaygateException implements Exception {
  RelaygateException(this.httpStatus, this.code, this.message, [this.details]);

  final int httpStatus;
  final String code;
  final String message;
  final Object? details;

  @override
  String toString() => 'error $code: $message';
}

class Relaygate {
  Relaygate({String? baseUrl, String? token})
      : baseUrl = baseUrl ?? Platform.environment['RELAYGATE_BASE_URL'] ?? 'http://127.0.0.1:8080/api',
        token = token ?? Platform.environment['RELAYGATE_TOKEN'];

  /// In a Flutter app pass these in (e.g. from --dart-define); phones have no environment.
  final String baseUrl;
  final String? token;
  final HttpClient _http = HttpClient()..connectionTimeout = const Duration(seconds: 5);

  /// GET /v1/health (no token).
  Future<Map<String, dynamic>> health() => _send('GET', '/v1/health');

  /// POST /v1/sms/send; a retry with the same [idempotencyKey] never sends a second SMS.
  Future<Map<String, dynamic>> sendSms(String to, String message, {String? idempotencyKey}) => _send(
        'POST',
        '/v1/sms/send',
        body: {'to': to, 'message': message},
        headers: {if (idempotencyKey != null) 'Idempotency-Key': idempotencyKey},
      );

  /// GET /v1/messages/status.
  Future<Map<String, dynamic>> messageStatus(String requestId) =>
      _send('GET', '/v1/messages/status?request_id=${Uri.encodeQueryComponent(requestId)}');

  /// POST /v1/otp/send.
  Future<Map<String, dynamic>> sendOtp(String to, {String purpose = 'login', int expiresInSeconds = 300}) =>
      _send('POST', '/v1/otp/send', body: {'to': to, 'purpose': purpose, 'expires_in_seconds': expiresInSeconds});

  /// POST /v1/otp/verify: `status` is `success`, `failed` or `expired`.
  Future<Map<String, dynamic>> verifyOtp(String otpId, String code) =>
      _send('POST', '/v1/otp/verify', body: {'otp_id': otpId, 'code': code});

  /// POST /v1/recipient-lists/queue: every number of the list its own message; a retry with
  /// the same [idempotencyKey] never queues the list twice.
  Future<Map<String, dynamic>> queueList(String listId, String message, {String? idempotencyKey}) => _send(
        'POST',
        '/v1/recipient-lists/queue',
        body: {'list_id': listId, 'message': message},
        headers: {if (idempotencyKey != null) 'Idempotency-Key': idempotencyKey},
      );

  void close() => _http.close();

  Future<Map<String, dynamic>> _send(String method, String path,
      {Map<String, Object?>? body, Map<String, String> headers = const {}}) async {
    final request = await _http.openUrl(method, Uri.parse('$baseUrl$path'));
    request.headers.set(HttpHeaders.acceptHeader, 'application/json');
    if (token != null && token!.isNotEmpty) {
      request.headers.set(HttpHeaders.authorizationHeader, 'Bearer $token');
    }
    headers.forEach(request.headers.set);
    if (body != null) {
      final bytes = utf8.encode(jsonEncode(body));
      request.headers.contentType = ContentType.json;
      request.contentLength = bytes.length;
      request.add(bytes);
    }
    final response = await request.close().timeout(const Duration(seconds: 15));
    final raw = await response.transform(utf8.decoder).join();
    Object? data;
    try {
      data = jsonDecode(raw);
    } on FormatException {
      throw RelaygateException(response.statusCode, 'bad_response', 'HTTP ${response.statusCode}: $raw');
    }
    if (data is Map<String, dynamic> && data['ok'] == true) return data;
    final error = data is Map<String, dynamic> && data['error'] is Map<String, dynamic>
        ? data['error'] as Map<String, dynamic>
        : const <String, dynamic>{};
    throw RelaygateException(response.statusCode, '${error['code'] ?? 'unknown'}',
        '${error['message'] ?? 'HTTP ${response.statusCode}'}', error['details']);
  }
}

/// Runs [body]; prints "error <code>: <message>" to stderr and exits 1 on failure.
Future<void> runExample(Future<int> Function() body) async {
  var status = 1;
  try {
    status = await body();
  } on RelaygateException catch (e) {
    stderr.writeln(e);
    if (e.details != null) stderr.writeln(jsonEncode(e.details));
  } on IOException catch (e) {
    stderr.writeln('error: $e');
  }
  exit(status);
}
