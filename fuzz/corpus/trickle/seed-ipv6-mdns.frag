a=candidate:1 1 udp 2113937151 2001:db8::1 51000 typ host
a=candidate:2 1 udp 2113937151 0b0e8d0c-8a6e-4a35-9b8d-0e7d7c6e2f11.local 51001 typ host
a=candidate:3 2 UDP 2113937150 ::1 51002 typ host
