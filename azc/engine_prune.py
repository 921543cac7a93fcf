"""Native dead-code pruning for the tier-1 evaluator, from the liveness facts of packing.

Dead instructions cannot change a fitness, and random programs carry many: the demo's random
programs keep about 5 of their 20 instructions. Pruning each program natively right before it
runs costs far less than the Python pass would.
"""

from azc.codegen import Emitter
from azc.ir import FEATURES, LABEL, PREDICTION


def pruner(shape, record: int) -> str:
    """@prune: copy a program's records minus dead code, by liveness over the training loop.

    Writes the live component offsets to outoffs[0..3] and, in outoffs[4], whether the live
    Predict writes v0.

        after Predict, s1 is read (the error check); the driver then overwrites s0 and v0
        live after Learn   = live before Predict, minus s0 and v0
        live after Predict = {s1} + (live before Learn or Predict, minus s0 and v0)
        iterate to the fixed point; Setup's live-out is Predict's live-in minus s0 and v0
        an instruction is dead unless it is kept (random draws) or writes something live
    """
    def facts(e, at):  # written, overwritten, read, keep: the record's last four fields
        return [e.load("i64", e.gep(at, str(k), "i64"), "f") for k in range(8, 12)]

    e = Emitter(1, shape.F)
    live = e.var("i64", "live")
    e.store("i64", "%live", live)
    count = e.value("i64", "sub i64 %last, %first")
    with e.loop(count, "j") as j:
        index = e.value("i64", f"sub i64 %last, {j}")
        index = e.value("i64", f"sub i64 {index}, 1")
        written, killed, read, keep = facts(e, e.gep("%recs", index, f"[{record} x i64]"))
        now = e.load("i64", live)
        hit = e.value("i64", f"and i64 {written}, {now}")
        useful = e.value("i1", f"icmp ne i64 {hit}, 0")
        kept = e.value("i1", f"icmp ne i64 {keep}, 0")
        useful = e.value("i1", f"or i1 {useful}, {kept}")
        flag = e.gep("%flags", e.value("i64", f"sub i64 {index}, %base"), "i8")
        e.store("i8", e.value("i8", f"zext i1 {useful} to i8"), flag)
        survivors = e.value("i64", f"xor i64 {killed}, -1")
        after = e.value("i64", f"and i64 {now}, {survivors}")
        after = e.value("i64", f"or i64 {after}, {read}")
        e.store("i64", e.value("i64", f"select i1 {useful}, i64 {after}, i64 {now}"), live)
    e("ret i64 " + e.load("i64", live))
    parts = [e.function("define internal i64 @back(ptr noalias %recs, i64 %first, i64 %last, "
                        "i64 %live, ptr noalias %flags, i64 %base)")]

    e = Emitter(1, shape.F)
    starts = [e.load("i64", e.gep("%offs", str(k), "i64")) for k in range(4)]
    s1 = 1 << PREDICTION
    entry = ~((1 << LABEL) | (1 << (shape.memory.scalars + FEATURES)))
    after_predict, after_learn = e.var("i64", "lp"), e.var("i64", "ll")
    e.store("i64", str(s1), after_predict)
    e.store("i64", "0", after_learn)

    def run(c, live):
        return e.value("i64", f"call i64 @back(ptr %recs, i64 {starts[c]}, i64 {starts[c + 1]}, "
                              f"i64 {live}, ptr %flags, i64 {starts[0]})")

    done = e.label("fixed")
    with e.loop(2 * 64 + 2, "it"):
        lp, ll = e.load("i64", after_predict), e.load("i64", after_learn)
        into_learn, into_predict = run(2, ll), run(1, lp)
        new_ll = e.value("i64", f"and i64 {into_predict}, {entry}")
        either = e.value("i64", f"or i64 {into_learn}, {into_predict}")
        new_lp = e.value("i64", f"and i64 {either}, {entry}")
        new_lp = e.value("i64", f"or i64 {new_lp}, {s1}")
        same = e.value("i1", f"icmp eq i64 {new_ll}, {ll}")
        same2 = e.value("i1", f"icmp eq i64 {new_lp}, {lp}")
        e.store("i64", new_ll, after_learn)
        e.store("i64", new_lp, after_predict)
        stable = e.value("i1", f"and i1 {same}, {same2}")
        going = e.label("again")
        e(f"br i1 {stable}, label %{done}, label %{going}")
        e.block(going)
    e(f"br label %{done}")
    e.block(done)
    run(2, e.load("i64", after_learn))
    into_predict = run(1, e.load("i64", after_predict))
    run(0, e.value("i64", f"and i64 {into_predict}, {entry}"))

    kept, predict_writes = e.var("i64", "kept"), e.var("i64", "pw")
    e.store("i64", "0", kept)
    e.store("i64", "0", predict_writes)
    for c in range(3):
        e.store("i64", e.load("i64", kept), e.gep("%outoffs", str(c), "i64"))
        count = e.value("i64", f"sub i64 {starts[c + 1]}, {starts[c]}")
        with e.loop(count, f"c{c}") as j:
            index = e.value("i64", f"add i64 {starts[c]}, {j}")
            relative = e.value("i64", f"sub i64 {index}, {starts[0]}")
            flag = e.load("i8", e.gep("%flags", relative, "i8"))
            with e.when(e.value("i1", f"icmp ne i8 {flag}, 0"), "copy"):
                k = e.load("i64", kept)
                source = e.gep("%recs", index, f"[{record} x i64]")
                target = e.gep("%out", k, f"[{record} x i64]")
                e(f"call void @llvm.memcpy.p0.p0.i64(ptr align 8 {target}, ptr align 8 "
                  f"{source}, i64 {record * 8}, i1 false)")
                e.store("i64", e.value("i64", f"add i64 {k}, 1"), kept)
                if c == 1:
                    written = e.load("i64", e.gep(source, "8", "i64"))
                    old = e.load("i64", predict_writes)
                    e.store("i64", e.value("i64", f"or i64 {old}, {written}"), predict_writes)
    e.store("i64", e.load("i64", kept), e.gep("%outoffs", "3", "i64"))
    # Slot 4: whether live Predict code writes v0, so Learn needs the features copied again.
    v0 = 1 << (shape.memory.scalars + FEATURES)
    rewrite = e.value("i64", f"and i64 {e.load('i64', predict_writes)}, {v0}")
    e.store("i64", rewrite, e.gep("%outoffs", "4", "i64"))
    e("ret void")
    parts.append(e.function("define internal void @prune(ptr noalias %recs, ptr noalias %offs, "
                            "ptr noalias %out, ptr noalias %outoffs, ptr noalias %flags)"))
    parts.append("define void @prune_program(ptr %recs, ptr %offs, ptr %out, ptr %outoffs, "
                 "ptr %flags) {\n  call void @prune(ptr %recs, ptr %offs, ptr %out, "
                 "ptr %outoffs, ptr %flags)\n  ret void\n}\n")
    return "\n".join(parts)
