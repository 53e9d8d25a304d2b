a=candidate:0 1 UDP 2122252543 127.0.0.1 56417 typ host
a=candidate:1 1 TCP 2105524479 127.0.0.1 9 typ host tcptype active
a=candidate:0 2 UDP 2122252542 127.0.0.1 60000 typ host
a=end-of-candidates
