"""The report's arithmetic on hand-made records, the cost figures of the trace, and perception timing."""

import time

import numpy as np

from spatialclaw_ros.session_log.log import read_trace
from spatialclaw_ros.agent import Agent
from spatialclaw_ros.agent.loop import QuestionRun
from spatialclaw_ros.config import KernelConfig, ModelConfig, load_config
from spatialclaw_ros.evaluation.report import comparison_table, cost_table, summarise, worst_questions, write_report
from spatialclaw_ros.evaluation.runner import trace_costs
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.kernel.host import HostReply, HostRequest
from spatialclaw_ros.kernel.pool import KernelPool
from spatialclaw_ros.llm.client import ChatModel


def record(interface, category, score, **extra):
    return {"id": f"{category}-{score}", "interface": interface, "question_type": category, "score": score,
            "tokens": {"total_tokens": 100}, "model_s": 1.0, "kernel_s": 0.5, "perception_s": 0.0, "elapsed_s": 2.0,
            "predicted": None, "truth": "A", "status": "answered", "error_code": "", "session_dir": "s", **extra}


def test_overall_is_over_questions_and_category_mean_over_categories(tmp_path):
    records = [record("code", "count", 1.0), record("code", "count", 0.5), record("code", "count", 0.0),
               record("code", "size", 1.0, cost={"bytes_sent": 4000}),
               record("no-tool", "count", 0.0), record("no-tool", "size", 0.6, tokens={"total_tokens": 40})]
    [code, no_tool] = summarise(records, order=["code", "no-tool"])
    assert code.overall == 2.5 / 4 and code.category_mean == (0.5 + 1.0) / 2
    assert code.categories == {"count": (0.5, 3), "size": (1.0, 1)}
    assert no_tool.costs["tokens"] == 70 and code.costs["bytes_sent"] == 4000
    table = comparison_table([code, no_tool])
    assert table[1] == ["code", "4", "62.5", "75.0", "50.0 (3)", "100.0 (1)"]
    assert cost_table([code, no_tool])[0][-1] == "bytes_sent / q"
    assert [r["score"] for r in worst_questions(records, 3)] == [0.0, 0.0, 0.5]
    summary, page = write_report(tmp_path, records, [], order=["code", "no-tool"])
    assert "| code | 4 | 62.5 | 75.0 | 50.0 (3) | 100.0 (1) |" in summary.read_text()
    assert page.read_text().count("data:image/png;base64,") == 3


def test_perception_calls_are_timed_into_the_trace(tmp_path):
    config = load_config(env={})
    frames = FrameSet([Frame(index=0, rgb=np.zeros((4, 4, 3), np.uint8))])
    with KernelPool(KernelConfig(pool_size=0)) as pool, ChatModel(ModelConfig(base_url="http://127.0.0.1:9/v1")) as model:
        run = QuestionRun(Agent(config, model=model, pool=pool), "q?", frames, [], cancel=None, on_event=None,
                          session_dir=tmp_path / "s", max_steps=None, deadline_s=None)
        def slow(request):
            time.sleep(0.05)
            return HostReply({"ok": True})

        handlers = run.timed({"perception.reconstruct": slow})
        assert handlers["perception.reconstruct"](HostRequest("perception.reconstruct", {})).payload == {"ok": True}
        run.log.event("kernel", pid=1234)
        run.watch.stop()
        run.log.close()
    costs = trace_costs(tmp_path / "s")
    assert costs["perception_s"] >= 0.05 and costs["kernel_pids"] == [1234]
    assert [event["kind"] for event in read_trace(tmp_path / "s")] == ["perception", "kernel"]
