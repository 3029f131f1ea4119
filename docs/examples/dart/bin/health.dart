// GET /v1/health (no token). Usage: dart run bin/health.dart
import 'package:relaygate_examples/relaygate.dart';

Future<void> main() => runExample(() async {
      final h = await Relaygate().health();
      print('status=${h['status']} database=${h['database']} version=${h['version']}');
      return 0;
    });
