a=candidate:foundation 1 udp 1845501695 192.0.2.1 1 typ prflx raddr 0.0.0.0 rport 0
a=candidate:x 256 udp 4294967295 127.0.0.1 65535 typ host
a=ice-ufrag:
a=candidate:
