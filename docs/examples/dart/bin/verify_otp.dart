// POST /v1/otp/verify; exit status 0 only on "success".
// Usage: RELAYGATE_TOKEN=rgat_... dart run bin/verify_otp.dart otp_01H... 123456
import 'dart:io';

import 'package:relaygate_examples/relaygate.dart';

Future<void> main(List<String> args) async {
  if (args.length != 2) {
    stderr.writeln('usage: verify_otp <otp_id> <code>');
    exit(2);
  }
  await runExample(() async {
    final r = await Relaygate().verifyOtp(args[0], args[1]);
    final reason = r['reason'] == null ? '' : ' reason=${r['reason']}';
    print('status=${r['status']} attempts_left=${r['attempts_left']}$reason');
    return r['status'] == 'success' ? 0 : 1;
  });
}
