#!/usr/bin/env python3
"""Minimal WHIP publisher / WHEP viewer on GStreamer's webrtcbin (PyGObject).

Used by the end-to-end tests as an independent third WebRTC stack. It keeps
webrtcbin's defaults (DTLS certificate, no extra consent/keepalive logic) on
purpose: the server is tested against webrtcbin as shipped.

  webrtcbin_client.py publish --url URL --token TOKEN --video vp8|h264 --seconds N
  webrtcbin_client.py view    --url URL [--token TOKEN] --seconds N

Prints exactly one JSON line on stdout; diagnostics go to stderr.
Exit status 0 on success, 1 otherwise (including --timeout, default N+20 s).
Times in the JSON ("...AtSec", problems) are seconds since the script started.
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import gi
except ImportError:
    # A pyenv/venv interpreter usually lacks the distribution's PyGObject:
    # retry once with the system interpreter.
    system_python = "/usr/bin/python3"
    if (os.path.exists(system_python)
            and os.path.realpath(sys.executable) != os.path.realpath(system_python)
            and not os.environ.get("WEBRTCBIN_CLIENT_REEXEC")):
        os.environ["WEBRTCBIN_CLIENT_REEXEC"] = "1"
        os.execv(system_python, [system_python] + sys.argv)
    raise

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

T_START = time.monotonic()

# stdout carries exactly one JSON line. GLib prints debug/info messages (e.g. with
# G_MESSAGES_DEBUG=all) to file descriptor 1, so keep a private copy of stdout for
# the JSON and point descriptor 1 at stderr.
sys.stdout.flush()
RESULT_OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
BAD_STATES = ("failed", "disconnected", "closed")
STALL_SECONDS = 3

VP8_CAPS = "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
H264_CAPS = ("application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
             "packetization-mode=(string)1,profile-level-id=(string)42e01f")
OPUS_CAPS = ("application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
             "encoding-params=(string)2")
VIDEO_FB = ",rtcp-fb-nack=(boolean)true,rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true"


def capsfilter(caps):
    return 'capsfilter caps="%s"' % caps


def now():
    return round(time.monotonic() - T_START, 1)


def log(*parts):
    line = "[%6.1fs] %s\n" % (time.monotonic() - T_START, " ".join(str(p) for p in parts))
    sys.stderr.write(line)
    sys.stderr.flush()


def nick(value):
    try:
        return value.value_nick
    except AttributeError:
        return str(value)


# ---------------------------------------------------------------- HTTP ----

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, headers, body text); status None when unreachable."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        text = err.read().decode("utf-8", "replace") if err.fp else ""
        return err.code, err.headers, text
    except Exception as err:  # connection refused, timeouts, ...
        return None, None, "%s: %s" % (type(err).__name__, err)


def in_thread(work, done):
    """Runs work() in a daemon thread and done(result) on the GLib main loop."""
    def run():
        result = work()
        GLib.idle_add(lambda: (done(result), False)[1])
    threading.Thread(target=run, daemon=True).start()


# -------------------------------------------------------------- client ----

class Client:
    def __init__(self, args):
        self.args = args
        self.role = args.role
        self.loop = GLib.MainLoop()
        self.result = {"role": self.role, "status": None}
        self.problems = []
        self.out_lock = threading.Lock()
        self.printed = False
        self.finishing = False
        self.offer_sent = False
        self.location = None
        self.answer_at = None
        self.connected_at = None
        self.ever_connected = False
        self.bad_after_connect = False
        self.last_conn = None
        self.last_ice = None
        self.stats = {}
        # viewer counters (updated from streaming threads)
        self.video_frames = 0
        self.audio_buffers = 0
        self.width = None
        self.height = None
        self.first_video_at = None
        self.last_video_at = None
        self.last_audio_at = None
        self.stall_reported = set()
        self.video_codec = None
        self.audio_codec = None

        self.pipe = Gst.Pipeline.new("client")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        Gst.util_set_object_arg(self.webrtc, "bundle-policy", "max-bundle")
        if args.local_address:
            # libnice gathers on no loopback interface; the tests live on loopback only. This
            # only names the address to gather on: DTLS, consent and the rest stay webrtcbin's.
            gi.require_version("Nice", "0.1")
            from gi.repository import Nice
            # Kept for the client's life: PyGObject's wrappers of these hold the only extra
            # reference, and webrtcbin's ICE object must not be released under it.
            self.ice = self.webrtc.get_property("ice-agent")
            self.nice_agent = self.ice.get_property("agent")
            address = Nice.Address.new()
            if not address.set_from_string(args.local_address) or not self.nice_agent.add_local_address(address):
                raise ValueError("cannot gather on %s" % args.local_address)
        self.pipe.add(self.webrtc)
        if self.role == "publish":
            self.build_publisher()
        else:
            self.build_viewer()
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.local_candidates = 0
        self.webrtc.connect("on-ice-candidate", self.on_local_candidate)
        self.webrtc.connect("notify::connection-state", self.on_state_notify)
        self.webrtc.connect("notify::ice-connection-state", self.on_state_notify)
        self.negotiation_needed = False
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_bus)

    def problem(self, text):
        entry = "%.1fs: %s" % (now(), text)
        log("PROBLEM", entry)
        self.problems.append(entry)

    # ------------------------------------------------------------ build --

    def build_publisher(self):
        if self.args.video == "vp8":
            video = ("vp8enc deadline=1 keyframe-max-dist=60 ! rtpvp8pay pt=96 ! " + capsfilter(VP8_CAPS))
        else:
            video = ("x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 ! "
                     "video/x-h264,profile=constrained-baseline ! h264parse ! "
                     "rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency ! "
                     + capsfilter("application/x-rtp,media=video,encoding-name=H264,"
                                  "payload=102,clock-rate=90000"))
        branches = {
            "video": ("videotestsrc is-live=true pattern=ball ! "
                      "video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert ! queue ! "
                      + video),
            "audio": ("audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! "
                      "queue ! opusenc ! rtpopuspay pt=111 ! " + capsfilter(OPUS_CAPS)),
        }
        self.sink_pads = []
        for kind, desc in branches.items():
            branch = Gst.parse_bin_from_description(desc, True)
            branch.set_name(kind + "-branch")
            self.pipe.add(branch)
            pad = self.webrtc.request_pad_simple("sink_%u")
            branch.get_static_pad("src").link(pad)
            trans = pad.get_property("transceiver")
            trans.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            self.sink_pads.append((kind, pad))

    def build_viewer(self):
        recv = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
        video_caps = Gst.Caps.from_string(VP8_CAPS + VIDEO_FB + ";" + H264_CAPS + VIDEO_FB)
        self.webrtc.emit("add-transceiver", recv, video_caps)
        self.webrtc.emit("add-transceiver", recv, Gst.Caps.from_string(OPUS_CAPS))
        self.webrtc.connect("pad-added", self.on_incoming_pad)

    def on_incoming_pad(self, _webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        media, enc = s.get_string("media"), s.get_string("encoding-name")
        log("incoming pad", pad.get_name(), media, enc)
        if media == "video":
            self.video_codec = enc
        elif media == "audio":
            self.audio_codec = enc
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self.on_decoded_pad)
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def on_decoded_pad(self, _decode, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        if name.startswith("video/"):
            kind, convert = "video", "videoconvert"
        elif name.startswith("audio/"):
            kind, convert = "audio", "audioconvert"
        else:
            log("ignoring decoded pad with caps", name)
            return
        log("decoded", kind, "pad:", caps.to_string())
        conv = Gst.ElementFactory.make(convert)
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        for element in (conv, sink):
            self.pipe.add(element)
        conv.link(sink)
        for element in (sink, conv):
            element.sync_state_with_parent()
        pad.link(conv.get_static_pad("sink"))
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_decoded_buffer, kind)

    def on_decoded_buffer(self, pad, _info, kind):
        if kind == "video":
            self.last_video_at = time.monotonic()
            self.video_frames += 1
            if self.first_video_at is None:
                self.first_video_at = time.monotonic()
                caps = pad.get_current_caps()
                if caps:
                    s = caps.get_structure(0)
                    ok_w, w = s.get_int("width")
                    ok_h, h = s.get_int("height")
                    if ok_w and ok_h:
                        self.width, self.height = w, h
                log("first decoded video frame %sx%s" % (self.width, self.height))
        else:
            self.last_audio_at = time.monotonic()
            if self.audio_buffers == 0:
                log("first decoded audio buffer")
            self.audio_buffers += 1
        return Gst.PadProbeReturn.OK

    # ------------------------------------------------------- negotiation --

    def on_negotiation_needed(self, _webrtc):
        # emitted from webrtcbin's thread: continue on the main loop
        GLib.idle_add(self._negotiation_needed)

    def _negotiation_needed(self):
        if not self.negotiation_needed:
            self.negotiation_needed = True
            log("negotiation needed")
            GLib.timeout_add(100, self.maybe_create_offer)
        return False

    def maybe_create_offer(self):
        if self.finishing or self.offer_sent:
            return False
        if self.role == "publish":
            # wait until media caps reached webrtcbin, so the offer carries the
            # real codec parameters (e.g. H.264 profile-level-id)
            missing = [k for k, p in self.sink_pads if p.get_current_caps() is None]
            if missing and now() < 5:
                return True
            for kind, pad in self.sink_pads:
                caps = pad.get_current_caps()
                log("sink caps", kind, caps.to_string() if caps else None)
        self.offer_sent = True
        promise = Gst.Promise.new()
        self.webrtc.emit("create-offer", None, promise)
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply and reply.has_field("offer") else None
        if offer is None:
            self.problem("create-offer failed: %s" % (reply.to_string() if reply else None))
            self.finish()
            return False
        promise = Gst.Promise.new()
        self.webrtc.emit("set-local-description", offer, promise)
        promise.wait()
        log("local description set; gathering:", nick(self.webrtc.get_property("ice-gathering-state")))
        GLib.timeout_add(5000, self.gathering_fallback)
        self.check_gathering()
        return False

    def on_local_candidate(self, _webrtc, mline, candidate):
        self.local_candidates += 1
        log("local candidate", mline, candidate)

    def on_gathering(self, _webrtc, _pspec):
        GLib.idle_add(lambda: (self.check_gathering(), False)[1])

    def check_gathering(self):
        state = self.webrtc.get_property("ice-gathering-state")
        log("ice-gathering-state", nick(state))
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and self.offer_sent:
            self.send_offer()

    def gathering_fallback(self):
        if self.offer_sent and self.result.get("offerSentAtSec") is None and not self.finishing:
            self.problem("ICE gathering not complete after 5 s (%d local candidates; libnice ignores "
                         "loopback interfaces); sending the offer as it is" % self.local_candidates)
            self.send_offer()
        return False

    def send_offer(self):
        if self.result.get("offerSentAtSec") is not None or self.finishing:
            return
        self.result["offerSentAtSec"] = now()
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        if self.args.print_sdp:
            log("OFFER SDP:\n" + sdp)
        headers = {"Content-Type": "application/sdp", "Accept": "application/sdp"}
        if self.args.token:
            headers["Authorization"] = "Bearer " + self.args.token
        url = self.args.url
        retry_404 = self.role == "view"

        def post():
            deadline = time.monotonic() + 10
            while True:
                res = http("POST", url, sdp.encode(), headers)
                if retry_404 and res[0] == 404 and time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                return res
        in_thread(post, self.on_answer)

    def on_answer(self, res):
        status, headers, body = res
        self.result["status"] = status
        log("POST ->", status)
        if status is None or not 200 <= status < 300:
            self.result["error"] = body
            self.problem("POST %s answered %s" % (self.args.url, status))
            self.finish()
            return
        if status != 201:
            self.problem("POST answered %s instead of 201" % status)
        location = headers.get("Location")
        if location:
            self.location = urllib.parse.urljoin(self.args.url, location)
            self.result["location"] = location
        else:
            self.problem("201 without a Location header")
        if self.args.print_sdp:
            log("ANSWER SDP:\n" + body)
        ok, msg = GstSdp.SDPMessage.new_from_text(body)
        if ok != GstSdp.SDPResult.OK:
            self.problem("answer is not parseable SDP")
            self.finish()
            return
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        promise = Gst.Promise.new()
        self.webrtc.emit("set-remote-description", answer, promise)
        promise.wait()
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            self.problem("set-remote-description failed: %s" % reply.get_value("error"))
            self.finish()
            return
        self.answer_at = time.monotonic()
        self.result["answerAtSec"] = now()
        log("answer applied; running for %s s" % self.args.seconds)
        GLib.timeout_add_seconds(1, self.sample)
        GLib.timeout_add(int(self.args.seconds * 1000), lambda: (self.finish(), False)[1])

    # ------------------------------------------------------------ states --

    def on_state_notify(self, _webrtc, _pspec):
        GLib.idle_add(lambda: (self.observe(), False)[1])

    def observe(self):
        conn = nick(self.webrtc.get_property("connection-state"))
        ice = nick(self.webrtc.get_property("ice-connection-state"))
        if ice != self.last_ice:
            log("ice-connection-state", ice)
            if ice in BAD_STATES:
                self.problem("ice-connection-state %s" % ice)
            self.last_ice = ice
        if conn != self.last_conn:
            log("connection-state", conn)
            if conn in BAD_STATES:
                self.problem("connection-state %s" % conn)
                if self.ever_connected:
                    self.bad_after_connect = True
            if conn == "connected" and not self.ever_connected:
                self.ever_connected = True
                self.connected_at = time.monotonic()
                self.result["connectedAtSec"] = now()
            self.last_conn = conn
        return conn

    def sample(self):
        if self.finishing:
            return False
        self.observe()
        if self.role == "view":
            self.check_stall()
        return True

    def check_stall(self):
        # webrtcbin keeps saying "connected" when the server silently drops the
        # session (it sends no consent checks), so watch the media itself
        for kind, last in (("video", self.last_video_at), ("audio", self.last_audio_at)):
            if last is not None and kind not in self.stall_reported \
                    and time.monotonic() - last > STALL_SECONDS:
                self.stall_reported.add(kind)
                self.problem("no decoded %s since %.1fs" % (kind, last - T_START))

    def on_bus(self, _bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            self.problem("GStreamer error from %s: %s" % (msg.src.get_name(), err.message))
            log("  debug:", dbg)
        elif msg.type == Gst.MessageType.WARNING:
            err, dbg = msg.parse_warning()
            log("GST WARNING from", msg.src.get_name(), err.message, dbg)
        elif msg.type == Gst.MessageType.STATE_CHANGED and msg.src == self.pipe:
            old, new, _ = msg.parse_state_changed()
            log("pipeline", nick(old), "->", nick(new))

    # ------------------------------------------------------------ finish --

    def finish(self):
        if self.finishing:
            return
        self.finishing = True
        self.final_conn = self.observe()
        if self.role == "view":
            self.check_stall()
        self.result["iceState"] = self.last_ice
        self.result["connectionState"] = self.final_conn
        log("finishing")
        got = threading.Event()

        def on_stats(promise, *_):
            reply = promise.get_reply()
            if reply is not None:
                self.stats = collect_stats(reply)
            got.set()
            GLib.idle_add(lambda: (self.after_stats(), False)[1])

        promise = Gst.Promise.new_with_change_func(on_stats, None)
        self.webrtc.emit("get-stats", None, promise)
        GLib.timeout_add(3000, lambda: (got.is_set() or self.after_stats(), False)[1])

    def after_stats(self):
        if getattr(self, "_after_stats", False):
            return
        self._after_stats = True
        if self.location:
            headers = {"Authorization": "Bearer " + self.args.token} if self.args.token else {}
            in_thread(lambda: http("DELETE", self.location, None, headers), self.after_delete)
        else:
            self.after_delete(None)

    def after_delete(self, res):
        if res is not None:
            self.result["deleteStatus"] = res[0]
            log("DELETE ->", res[0])
            if res[0] is None or not 200 <= res[0] < 300:
                self.problem("DELETE %s answered %s %s" % (self.location, res[0], res[2].strip()[:200]))
        code = self.emit_result(timeout=False)
        # teardown must not hang the script
        guard = threading.Timer(5, lambda: os._exit(code))
        guard.daemon = True
        guard.start()
        self.pipe.set_state(Gst.State.NULL)
        self.exit_code = code
        self.loop.quit()

    def build_json(self):
        r = dict(self.result)
        r.setdefault("iceState", self.last_ice)
        r.setdefault("connectionState", self.last_conn)
        if self.role == "publish":
            out = self.stats.get("outbound", {})
            r["bytesSent"] = {k: out.get(k, {}).get("bytes", 0) for k in ("video", "audio")}
            r["packetsSent"] = {k: out.get(k, {}).get("packets", 0) for k in ("video", "audio")}
        else:
            inb = self.stats.get("inbound", {})
            r["videoFrames"] = self.video_frames
            r["width"] = self.width
            r["height"] = self.height
            r["audioBuffers"] = self.audio_buffers
            r["firstVideoAfterSec"] = (round(self.first_video_at - self.answer_at, 2)
                                       if self.first_video_at and self.answer_at else None)
            for kind, last in (("video", self.last_video_at), ("audio", self.last_audio_at)):
                r["last%sAtSec" % kind.capitalize()] = (round(last - T_START, 1)
                                                        if last else None)
            r["videoCodec"] = self.video_codec
            r["audioCodec"] = self.audio_codec
            r["bytesReceived"] = {k: inb.get(k, {}).get("bytes", 0) for k in ("video", "audio")}
        r["problems"] = list(self.problems)
        return r

    def success(self, r):
        delete = r.get("deleteStatus")
        ok = (r["status"] == 201 and self.ever_connected and not self.bad_after_connect
              and r["connectionState"] == "connected"
              # the server must still know the session at the end
              and delete is not None and 200 <= delete < 300)
        if self.role == "publish":
            return ok and r["bytesSent"]["video"] > 0 and r["bytesSent"]["audio"] > 0
        return (ok and r["videoFrames"] > 0 and r["audioBuffers"] > 0
                and not self.stall_reported)

    def emit_result(self, timeout):
        with self.out_lock:
            if self.printed:
                return 1
            if timeout:
                self.problems.append("%.1fs: timeout after %s s" % (now(), self.args.timeout))
            r = self.build_json()
            code = 1 if timeout else (0 if self.success(r) else 1)
            RESULT_OUT.write(json.dumps(r) + "\n")
            RESULT_OUT.flush()
            self.printed = True
            log("exit", code)
            return code

    def run(self):
        def on_timeout():
            self.emit_result(timeout=True)
            if self.location and not self.finishing:
                # best effort, so the server does not keep a half-dead session
                headers = {"Authorization": "Bearer " + self.args.token} if self.args.token else {}
                res = http("DELETE", self.location, None, headers, timeout=1.5)
                log("DELETE after timeout ->", res[0])
            sys.stderr.flush()
            os._exit(1)
        watchdog = threading.Timer(self.args.timeout, on_timeout)
        watchdog.daemon = True
        watchdog.start()
        self.exit_code = 1
        if self.pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self.problem("pipeline refused to start")
            GLib.idle_add(lambda: (self.finish(), False)[1])
        if self.role == "view":
            # nothing upstream of webrtcbin: make sure an offer is created even
            # if on-negotiation-needed was emitted before we listened
            GLib.idle_add(self._negotiation_needed)
        self.loop.run()
        watchdog.cancel()
        return self.exit_code


def collect_stats(reply):
    """outbound-rtp / inbound-rtp bytes and packets, keyed by kind."""
    fields = [reply.nth_field_name(i) for i in range(reply.n_fields())]
    entries = {}
    for name in fields:
        value = reply.get_value(name)
        if isinstance(value, Gst.Structure):
            entries[name] = value
    # webrtcbin 1.22 mislabels bundled streams: every outbound-rtp entry can carry
    # the same codec-id/kind. Trust the codec entries' ssrc + mime-type first,
    # then the RTP clock rate, and the "kind" field only as a last resort.
    ssrc_kind = {}
    for s in entries.values():
        if s.has_field("mime-type") and s.has_field("ssrc"):
            mime = str(s.get_value("mime-type")).lower()
            ssrc_kind[int(s.get_value("ssrc"))] = mime.split("/")[0]

    def kind_of(s):
        if s.has_field("ssrc") and int(s.get_value("ssrc")) in ssrc_kind:
            return ssrc_kind[int(s.get_value("ssrc"))]
        src = s.get_value("gst-rtpsource-stats") if s.has_field("gst-rtpsource-stats") else None
        if isinstance(src, Gst.Structure) and src.has_field("clock-rate"):
            rate = int(src.get_value("clock-rate"))
            if rate == 90000:
                return "video"
            if rate == 48000:
                return "audio"
        return s.get_value("kind") if s.has_field("kind") else None

    out = {"outbound": {}, "inbound": {}}
    for name, s in entries.items():
        stype = nick(s.get_value("type")) if s.has_field("type") else ""
        if stype == "outbound-rtp":
            key, byte_f, pkt_f = "outbound", "bytes-sent", "packets-sent"
        elif stype == "inbound-rtp":
            key, byte_f, pkt_f = "inbound", "bytes-received", "packets-received"
        else:
            continue
        kind = kind_of(s)
        if kind is None:
            continue
        slot = out[key].setdefault(kind, {"bytes": 0, "packets": 0})
        if s.has_field(byte_f):
            slot["bytes"] += int(s.get_value(byte_f))
        if s.has_field(pkt_f):
            slot["packets"] += int(s.get_value(pkt_f))
    if os.environ.get("WEBRTCBIN_CLIENT_DUMP_STATS"):
        log("STATS", reply.to_string())
    log("stats", json.dumps(out))
    return out


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", required=True)
    common.add_argument("--token", default=None)
    common.add_argument("--seconds", type=float, required=True)
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="give up (exit 1) after this many seconds; default seconds+20")
    common.add_argument("--print-sdp", action="store_true", help="log offer/answer SDP to stderr")
    common.add_argument("--local-address", default=None,
                        help="gather ICE candidates on this address only (e.g. 127.0.0.1)")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=None)
    sub = parser.add_subparsers(dest="role", required=True)
    pub = sub.add_parser("publish", parents=[common])
    pub.add_argument("--video", choices=("vp8", "h264"), default="vp8")
    sub.add_parser("view", parents=[common])
    args = parser.parse_args(argv)
    if args.role == "publish" and not args.token:
        parser.error("publish needs --token")
    if args.timeout is None:
        args.timeout = args.seconds + 20
    return args


def main():
    args = parse_args(sys.argv[1:])
    try:
        Gst.init(None)
        client = Client(args)
    except Exception as err:  # still honour "one JSON line"
        log("setup failed:", repr(err))
        RESULT_OUT.write(json.dumps({"role": args.role, "status": None,
                                     "problems": ["%.1fs: setup failed: %s" % (now(), err)]}) + "\n")
        RESULT_OUT.flush()
        sys.exit(1)
    code = client.run()
    # leave without running finalizers: GStreamer's threads must not delay the exit
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
