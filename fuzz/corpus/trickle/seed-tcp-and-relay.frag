a=ice-ufrag:EsAw
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
m=video 9 UDP/TLS/RTP/SAVPF 96
a=mid:1
a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0
a=candidate:3 1 TCP 1518280447 127.0.0.1 50000 typ host tcptype passive
a=candidate:4 1 udp 41885439 198.51.100.9 3478 typ relay raddr 203.0.113.7 rport 61764
