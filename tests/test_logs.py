#!/usr/bin/env python3
"""A training run's records: TensorBoard events and run.json.

A tiny AdaptSegNet run on the synthetic benchmark (segda synth) with two evaluations; then
  - the event file is decoded independently of segda: TFRecord framing with every CRC-32C
    checked (a bitwise CRC here, not segda's table), the Event / Summary messages with
    python3-protobuf against a schema built at runtime from the field numbers;
  - every scalar equals metrics.jsonl (to the precision metrics.jsonl prints), both ways:
    nothing is missing from either;
  - each evaluation's grid image is a PNG that decodes (zlib) to 3 panels of data.eval_size;
  - run.json has every field, with the values of this run (version, device, argv, the FNV-1a
    hash of config.ini, seed, host, ISO 8601 UTC times, status);
  - train.tensorboard=false writes no event file; a run killed with SIGKILL keeps whole
    records up to the kill; a resumed run starts with a SessionLog START at its first step.
usage: test_logs.py SEGDA WORKDIR [DEVICE]
"""
import datetime
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

segda, work = sys.argv[1], sys.argv[2]
dev = sys.argv[3] if len(sys.argv) > 3 else "cpu"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


# ---- the schema, from the public field numbers ----
F = descriptor_pb2.FieldDescriptorProto


def schema():
    fdp = descriptor_pb2.FileDescriptorProto(name="segda_tb_test.proto", package="tbtest", syntax="proto2")

    def msg(name, fields):
        m = fdp.message_type.add(name=name)
        for fname, num, ftype, extra in fields:
            f = m.field.add(name=fname, number=num, type=ftype, label=extra.get("label", F.LABEL_OPTIONAL))
            if "type_name" in extra:
                f.type_name = extra["type_name"]

    msg("Image", [("height", 1, F.TYPE_INT32, {}), ("width", 2, F.TYPE_INT32, {}),
                  ("colorspace", 3, F.TYPE_INT32, {}), ("encoded_image_string", 4, F.TYPE_BYTES, {})])
    msg("Value", [("tag", 1, F.TYPE_STRING, {}), ("simple_value", 2, F.TYPE_FLOAT, {}),
                  ("image", 4, F.TYPE_MESSAGE, {"type_name": ".tbtest.Image"})])
    msg("Summary", [("value", 1, F.TYPE_MESSAGE, {"type_name": ".tbtest.Value", "label": F.LABEL_REPEATED})])
    msg("SessionLog", [("status", 1, F.TYPE_INT32, {})])  # an enum on the wire: START = 1
    msg("Event", [("wall_time", 1, F.TYPE_DOUBLE, {}), ("step", 2, F.TYPE_INT64, {}),
                  ("file_version", 3, F.TYPE_STRING, {}),
                  ("summary", 5, F.TYPE_MESSAGE, {"type_name": ".tbtest.Summary"}),
                  ("session_log", 6, F.TYPE_MESSAGE, {"type_name": ".tbtest.SessionLog"})])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("tbtest.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


Event = schema()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path, allow_partial_tail=False):
    """Every record's data, each CRC checked; a truncated last record only if allowed."""
    buf = open(path, "rb").read()
    out, pos = [], 0
    while pos < len(buf):
        if len(buf) - pos < 12:
            if allow_partial_tail:
                break
            fail(f"{path}: {len(buf) - pos} trailing bytes at {pos}")
        (n,) = struct.unpack_from("<Q", buf, pos)
        (lcrc,) = struct.unpack_from("<I", buf, pos + 8)
        if lcrc != masked(buf[pos:pos + 8]):
            fail(f"{path}: length CRC of the record at {pos}")
        if pos + 12 + n + 4 > len(buf):
            if allow_partial_tail:
                break
            fail(f"{path}: record at {pos} runs past the end")
        data = buf[pos + 12:pos + 12 + n]
        (dcrc,) = struct.unpack_from("<I", buf, pos + 12 + n)
        if dcrc != masked(data):
            fail(f"{path}: data CRC of the record at {pos}")
        out.append(data)
        pos += 12 + n + 4
    return out


def decode(path, allow_partial_tail=False):
    evs = []
    for data in records(path, allow_partial_tail):
        ev = Event()
        ev.ParseFromString(data)
        ev.DiscardUnknownFields()
        if ev.SerializeToString() != data:  # every byte is a field of the schema
            fail(f"{path}: a record has bytes outside the schema")
        evs.append(ev)
    if not evs or evs[0].file_version != "brain.Event:2":
        fail(f"{path}: the first record is not file_version brain.Event:2")
    return evs


def png_decode(png, want_w, want_h):
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        fail("image summary is not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(png):
        (n,) = struct.unpack_from(">I", png, pos)
        kind = png[pos + 4:pos + 8]
        body = png[pos + 8:pos + 8 + n]
        if struct.unpack_from(">I", png, pos + 8 + n)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            fail(f"PNG chunk {kind} CRC")
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if (w, h, depth, ctype) != (want_w, want_h, 8, 2):
                fail(f"PNG header {w}x{h} depth {depth} type {ctype}, expected {want_w}x{want_h} RGB8")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    if w is None or len(raw) != want_h * (1 + 3 * want_w) or any(raw[y * (1 + 3 * w)] > 4 for y in range(want_h)):
        fail("PNG pixel data does not decode to the image size")


def run(args, **kw):
    p = subprocess.run([segda] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        fail(f"segda {' '.join(args)}: exit {p.returncode}\n{p.stderr}")
    return p


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
run(["synth", "--out", f"{work}/synth", "--count", "8", "--seed", "3"])
common = ["--set", "method.name=adaptsegnet", "--set", "model.arch=deeplabv2_tiny", "--set", "data.source=gta5",
          "--set", f"data.source_root={work}/synth/source", "--set", "data.target=cityscapes",
          "--set", f"data.target_root={work}/synth/target", "--set", "data.source_size=64x32",
          "--set", "data.target_size=64x32", "--set", "data.eval_size=64x32", "--set", "data.batch=2",
          "--set", "adaptsegnet.d_width=8", "--set", "train.save_every=0", "--set", "train.log_every=1",
          "--set", "train.eval_max=2", "--set", f"train.device={dev}", "--set", "train.seed=77", "--quiet"]
out = f"{work}/run one"  # a space: the command line is quoted in run.json
argv = [segda, "train"] + common + ["--set", "solver.iterations=6", "--set", "train.eval_every=3", "--out", out]
t_before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
run(argv[1:])
t_after = datetime.datetime.now(datetime.timezone.utc)

# ---- TensorBoard ----
host = socket.gethostname()
files = glob.glob(f"{out}/events.out.tfevents.*")
if len(files) != 1:
    fail(f"expected one event file, got {files}")
m = re.fullmatch(r"events\.out\.tfevents\.(\d+)\.(.+)", os.path.basename(files[0]))
if not m or m.group(2) != host.replace("/", "_").replace(" ", "_") or \
        abs(int(m.group(1)) - t_before.timestamp()) > 60:
    fail(f"event file name {os.path.basename(files[0])}")
events = decode(files[0])
scalars, images = {}, {}
for ev in events[1:]:
    if not (t_before.timestamp() - 1 <= ev.wall_time <= t_after.timestamp() + 1):
        fail(f"wall_time {ev.wall_time} outside the run")
    for v in ev.summary.value:
        if v.HasField("image"):
            images[(v.tag, ev.step)] = v.image
        elif v.HasField("simple_value"):
            if (v.tag, ev.step) in scalars:
                fail(f"scalar {v.tag} at step {ev.step} twice")
            scalars[(v.tag, ev.step)] = v.simple_value
        else:
            fail(f"value {v.tag} has neither a scalar nor an image")

# metrics.jsonl: (tag, step) -> (value, rel_tol, abs_tol) as printed (%.6g, %.4g, %.1f, %.4f)
expect = {}
evals = []
for line in open(f"{out}/metrics.jsonl"):
    rec = json.loads(line)
    it = rec["iter"]
    if "loss" in rec:
        expect[("train/lr", it)] = (rec["lr"], 1e-5, 0)
        if "lr_aux" in rec:
            expect[("train/lr_aux", it)] = (rec["lr_aux"], 1e-5, 0)
        expect[("train/it_s", it)] = (rec["it_s"], 1e-3, 0)
        expect[("train/mem_mb", it)] = (rec["mem_mb"], 0, 0.051)
        for k, v in rec["loss"].items():
            expect[(f"loss/{k}", it)] = (v, 1e-5, 0)
    if "eval" in rec:
        evals.append(it)
        for k, v in rec["eval"].items():
            expect[(f"eval/{k}", it)] = (v, 0, 5.1e-5)
        for k, v in rec["iou"].items():
            if v is not None:
                expect[(f"iou/{k}", it)] = (v, 0, 5.1e-5)
if evals != [3, 6]:
    fail(f"evaluations at {evals}, expected [3, 6]")
if set(expect) != set(scalars):
    fail(f"scalars differ: only in metrics.jsonl {sorted(set(expect) - set(scalars))}, "
         f"only in the events {sorted(set(scalars) - set(expect))}")
for key, (v, rel, ab) in expect.items():
    if not math.isclose(scalars[key], v, rel_tol=rel + 2 ** -23, abs_tol=ab):
        fail(f"{key}: events {scalars[key]!r}, metrics.jsonl {v!r}")
for tag in ("loss/seg", "loss/adv", "loss/d_src", "train/lr", "train/lr_aux", "eval/mIoU", "eval/pixel_acc",
            "iou/building"):
    if (tag, 6) not in scalars:
        fail(f"no {tag} at step 6")
if sorted(images) != [("eval/grid", 3), ("eval/grid", 6)]:
    fail(f"images {sorted(images)}")
for img in images.values():
    if (img.width, img.height, img.colorspace) != (3 * 64, 32, 3):
        fail(f"grid image {img.width}x{img.height} colorspace {img.colorspace}")
    png_decode(img.encoded_image_string, img.width, img.height)
print(f"events: {len(events)} records, CRCs good; {len(scalars)} scalars equal metrics.jsonl; "
      f"{len(images)} grid PNGs")

# ---- run.json ----
info = json.load(open(f"{out}/run.json"))
version = subprocess.run([segda, "--version"], stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
mv = re.fullmatch(r"segda (\d+\.\d+\.\d+) \(git ([0-9a-f]{7,40}|unknown)\)", version)
if not mv or (info["segda_version"], info["git_commit"]) != (mv.group(1), mv.group(2)):
    fail(f"version: run.json {info.get('segda_version')} {info.get('git_commit')}, segda --version '{version}'")
fnv = 0xCBF29CE484222325
for b in open(f"{out}/config.ini", "rb").read():
    fnv = ((fnv ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
want = {"backend": dev.split(":")[0], "precision": "fp32", "ranks": 1, "seed": 77, "host": host,
        "method": "adaptsegnet", "config": "config.ini", "config_fnv1a64": f"{fnv:016x}",
        "tensorboard": os.path.basename(files[0]), "start_iteration": 0, "end_iteration": 6, "exit_code": 0,
        "status": "completed", "argv": argv}
for k, v in want.items():
    if info.get(k) != v:
        fail(f"run.json {k}: {info.get(k)!r}, expected {v!r}")
for k in ("device", "device_name", "driver"):
    if not isinstance(info.get(k), str) or not info[k]:
        fail(f"run.json {k} empty")
if f"--out '{out}'" not in info["command_line"] or not info["command_line"].startswith(segda + " train "):
    fail(f"run.json command_line {info['command_line']!r}")
times = []
for k in ("start_time", "end_time"):
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info[k]):
        fail(f"run.json {k} {info[k]!r} is not ISO 8601 UTC")
    times.append(datetime.datetime.strptime(info[k], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc))
if not (t_before <= times[0] <= times[1] <= t_after):
    fail(f"run.json times {times} outside [{t_before}, {t_after}]")
if glob.glob(f"{out}/run.json.tmp*") or glob.glob(f"{out}/*.tmp.*"):
    fail("temporary files left behind")
print("run.json: every field present and right")

# ---- train.tensorboard=false, and a killed run ----
off = f"{work}/off"
run(["train"] + common + ["--set", "solver.iterations=1", "--set", "train.eval_every=0",
                          "--set", "train.tensorboard=false", "--out", off])
if glob.glob(f"{off}/events.out.tfevents.*") or json.load(open(f"{off}/run.json"))["tensorboard"] is not None:
    fail("train.tensorboard=false wrote events")
killed = f"{work}/killed"
p = subprocess.Popen([segda, "train"] + common + ["--set", "solver.iterations=2000", "--set", "train.eval_every=0",
                                                  "--out", killed], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
deadline = time.time() + 60
while time.time() < deadline:
    lines = open(f"{killed}/metrics.jsonl").read().count("\n") if os.path.exists(f"{killed}/metrics.jsonl") else 0
    if lines >= 3:
        break
    time.sleep(0.05)
p.send_signal(signal.SIGKILL)
p.wait()
info = json.load(open(f"{killed}/run.json"))
if info["status"] != "running" or info["end_time"] is not None:
    fail(f"killed run's run.json: {info['status']}, end {info['end_time']}")
kf = glob.glob(f"{killed}/events.out.tfevents.*")
steps = [ev.step for ev in decode(kf[0], allow_partial_tail=True)[1:]]
if len(steps) < 3 or steps != list(range(1, len(steps) + 1)):
    fail(f"killed run's events: steps {steps}")
print(f"tensorboard off: no events; SIGKILL after {len(steps)} steps: every whole record kept")

# ---- a resumed run: a SessionLog START at its first step (TensorBoard drops what the first
# run logged from there on), and the two parts cover every step once ----
res = f"{work}/resumed"
part = common + ["--set", "solver.iterations=6", "--set", "train.eval_every=0", "--out", res]
run(["train"] + part + ["--set", "solver.stop=3"])
run(["train"] + part + ["--resume", "auto"])
starts, seg_steps = [], []
for path in sorted(glob.glob(f"{res}/events.out.tfevents.*")):  # one file, or two a second apart
    for ev in decode(path)[1:]:
        if ev.HasField("session_log"):
            starts.append((ev.session_log.status, ev.step))
        seg_steps += [ev.step for v in ev.summary.value if v.tag == "loss/seg"]
if starts != [(1, 4)] or sorted(seg_steps) != [1, 2, 3, 4, 5, 6]:
    fail(f"resumed run: session starts {starts}, loss/seg at {sorted(seg_steps)}")
info = json.load(open(f"{res}/run.json"))
if (info["start_iteration"], info["end_iteration"], info["status"]) != (3, 6, "completed"):
    fail(f"resumed run.json: {info['start_iteration']} -> {info['end_iteration']}, {info['status']}")
print("resumed run: SessionLog START at step 4, every step logged once")
