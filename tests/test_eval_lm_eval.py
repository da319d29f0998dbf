"""lm-eval backend: a local custom task (JSONL + YAML, no downloads) runs end to end on a tiny zoo model."""

import json

import pytest

lm_eval = pytest.importorskip("lm_eval")


def test_local_task_end_to_end(tmp_path):
    import zoo
    from zoo.eval.lm_eval_backend import ZooLM

    rows = [{"q": "2 + 2 =", "choices": [" 4", " 5"], "gold": 0},
            {"q": "The sky is", "choices": [" blue", " green"], "gold": 0}]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "zoo_tiny_mc.yaml").write_text(
        "task: zoo_tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: '{{q}}'\n"
        "doc_to_choice: '{{choices}}'\n"
        "doc_to_target: gold\n"
        "metric_list:\n  - metric: acc\n"
    )
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    model = zoo.load("nano-9b-v2", tiny=True, seed=0)
    lm = ZooLM(model=model, max_length=64)
    res = simple_evaluate(model=lm, tasks=["zoo_tiny_mc"], task_manager=TaskManager(include_path=str(tmp_path)),
                          limit=2)
    acc = res["results"]["zoo_tiny_mc"]["acc,none"]
    assert 0.0 <= acc <= 1.0
    # The registry name works too (what `lm_eval --model zoo` resolves).
    from lm_eval.api.registry import get_model

    assert get_model("zoo") is ZooLM


def test_loglikelihood_matches_manual_sum():
    import torch

    import zoo
    from zoo.eval.lm_eval_backend import ZooLM

    model = zoo.load("nano-9b-v2", tiny=True, seed=0)
    lm = ZooLM(model=model)

    class Req:
        args = ("hello there", " world")

    (ll, _), = lm.loglikelihood([Req()])
    ids = lm._encode("hello there") + lm._encode(" world")
    n = len(lm._encode(" world"))
    with torch.inference_mode():
        logp = torch.log_softmax(model(torch.tensor([ids[:-1]])).logits[0].float(), -1)
    manual = sum(logp[len(ids) - 1 - n + i, ids[len(ids) - n + i]].item() for i in range(n))
    assert ll == pytest.approx(manual, abs=1e-4)
