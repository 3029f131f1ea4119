// POST /v1/sms/send. Usage: RELAYGATE_TOKEN=rgat_... dart run bin/send_sms.dart +998901234567 "Your order #42 shipped"
import 'dart:io';
import 'dart:math';

import 'package:relaygate_examples/relaygate.dart';

Future<void> main(List<String> args) async {
  if (args.length != 2) {
    stderr.writeln('usage: send_sms <to> <message>');
    exit(2);
  }
  final random = Random.secure();
  final key = List.generate(16, (_) => random.nextInt(256).toRadixString(16).padLeft(2, '0')).join();
  await runExample(() async {
    final answer = await Relaygate().sendSms(args[0], args[1], idempotencyKey: key);
    print('${answer['status']} request_id=${answer['request_id']}');
    return 0;
  });
}
