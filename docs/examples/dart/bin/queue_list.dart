// POST /v1/recipient-lists/queue: every number of the list its own message.
// Usage: RELAYGATE_TOKEN=rgat_... dart run bin/queue_list.dart lst_01HV... "Hi {name}, our {city} shop is open"
import 'dart:io';
import 'dart:math';

import 'package:relaygate_examples/relaygate.dart';

Future<void> main(List<String> args) async {
  if (args.length != 2) {
    stderr.writeln('usage: queue_list <list_id> <message>');
    exit(2);
  }
  final random = Random.secure();
  final key = List.generate(16, (_) => random.nextInt(256).toRadixString(16).padLeft(2, '0')).join();
  await runExample(() async {
    final answer = await Relaygate().queueList(args[0], args[1], idempotencyKey: key);
    print('${answer['status']} batch_id=${answer['batch_id']} queued=${answer['queued']} '
        'skipped=${answer['skipped_total']}');
    for (final skipped in answer['skipped'] as List<dynamic>) {
      print('  skipped ${skipped['phone']} (${skipped['reason']})');
    }
    return 0;
  });
}
