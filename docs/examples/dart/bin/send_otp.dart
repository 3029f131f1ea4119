// POST /v1/otp/send. Usage: RELAYGATE_TOKEN=rgat_... dart run bin/send_otp.dart +998901234567 [purpose]
import 'dart:io';

import 'package:relaygate_examples/relaygate.dart';

Future<void> main(List<String> args) async {
  if (args.isEmpty || args.length > 2) {
    stderr.writeln('usage: send_otp <to> [purpose]');
    exit(2);
  }
  await runExample(() async {
    final otp = await Relaygate().sendOtp(args[0], purpose: args.length == 2 ? args[1] : 'login');
    print('otp_id=${otp['otp_id']} status=${otp['status']} expires_in_seconds=${otp['expires_in_seconds']}');
    return 0;
  });
}
