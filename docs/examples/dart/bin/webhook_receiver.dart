// A tiny webhook receiver (dart:io, plus package:crypto for HMAC-SHA256: the Dart SDK has
// none) that verifies relaygate's Standard Webhooks signatures: 204 for a genuine event, 401
// for anything else.
// Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 dart run bin/webhook_receiver.dart
import 'dart:convert';
import 'dart:io';

import 'package:crypto/crypto.dart';

const toleranceSeconds = 5 * 60;

class InvalidSignature implements Exception {
  InvalidSignature(this.message);
  final String message;
}

/// Throws [InvalidSignature] unless one of the "v1,<sig>" signatures matches and the time is fresh.
void verifyWebhook(String secret, List<int> body, String? msgId, String? timestamp, String? signatures) {
  if (msgId == null || msgId.isEmpty || timestamp == null || signatures == null || signatures.isEmpty) {
    throw InvalidSignature('missing webhook headers');
  }
  final sentAt = int.tryParse(timestamp);
  if (sentAt == null) throw InvalidSignature('bad timestamp');
  final now = DateTime.now().millisecondsSinceEpoch ~/ 1000;
  if ((now - sentAt).abs() > toleranceSeconds) throw InvalidSignature('timestamp too far from now');
  final key = base64.decode(secret.startsWith('whsec_') ? secret.substring(6) : secret);
  final expected = Hmac(sha256, key).convert([...utf8.encode('$msgId.$timestamp.'), ...body]).bytes;
  // During a secret rotation there are several signatures, separated by spaces.
  for (final candidate in signatures.split(' ')) {
    final comma = candidate.indexOf(',');
    if (comma < 0 || candidate.substring(0, comma) != 'v1') continue;
    List<int> given;
    try {
      given = base64.decode(candidate.substring(comma + 1));
    } on FormatException {
      continue;
    }
    if (constantTimeEquals(given, expected)) return;
  }
  throw InvalidSignature('no matching signature');
}

bool constantTimeEquals(List<int> a, List<int> b) {
  if (a.length != b.length) return false;
  var diff = 0;
  for (var i = 0; i < a.length; i++) {
    diff |= a[i] ^ b[i];
  }
  return diff == 0;
}

Future<void> main() async {
  final secret = Platform.environment['RELAYGATE_WEBHOOK_SECRET'];
  if (secret == null) {
    stderr.writeln('set RELAYGATE_WEBHOOK_SECRET to the endpoint secret (whsec_...)');
    exit(2);
  }
  final port = int.parse(Platform.environment['PORT'] ?? '8000');
  final server = await HttpServer.bind(InternetAddress.loopbackIPv4, port);
  print('listening on http://127.0.0.1:$port');
  await for (final request in server) {
    final body = await request.fold<List<int>>(<int>[], (all, chunk) => all..addAll(chunk)); // raw bytes
    final msgId = request.headers.value('webhook-id');
    try {
      verifyWebhook(secret, body, msgId, request.headers.value('webhook-timestamp'),
          request.headers.value('webhook-signature'));
      final event = jsonDecode(utf8.decode(body)) as Map<String, dynamic>;
      print('verified ${event['type']} id=$msgId'); // de-duplicate by msgId: retries reuse it
      request.response.statusCode = HttpStatus.noContent;
    } on InvalidSignature catch (e) {
      print('rejected: ${e.message}');
      request.response.statusCode = HttpStatus.unauthorized;
    }
    await request.response.close();
  }
}
