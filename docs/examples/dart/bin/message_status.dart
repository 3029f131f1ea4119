// GET /v1/messages/status. Usage: RELAYGATE_TOKEN=rgat_... dart run bin/message_status.dart req_01H...
import 'dart:io';

import 'package:relaygate_examples/relaygate.dart';

Future<void> main(List<String> args) async {
  if (args.length != 1) {
    stderr.writeln('usage: message_status <request_id>');
    exit(2);
  }
  await runExample(() async {
    final m = await Relaygate().messageStatus(args[0]);
    print('status=${m['status']} attempts=${m['attempts']} device=${m['device_name'] ?? '-'} '
        'failure_reason=${m['failure_reason'] ?? '-'}');
    return 0;
  });
}
