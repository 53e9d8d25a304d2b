a=ice-ufrag:EsAw
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
m=audio 9 RTP/AVP 0
a=mid:0
a=candidate:1387637174 1 udp 2122260223 127.0.0.1 61764 typ host generation 0 ufrag EsAw network-id 1
a=candidate:3471623853 1 udp 1686052607 203.0.113.7 61764 typ srflx raddr 127.0.0.1 rport 61764 generation 0
a=end-of-candidates
