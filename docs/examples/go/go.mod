module example.com/relaygate-examples

go 1.19
