"""The scorers by name: built-ins, the user's Python functions, a real reward model, and the
errors that name a bad scorer."""

import sys
import textwrap

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from scorers import ScorerError, get_scorer
from tests.scorers.reward_models import build_reward_model


def test_built_in_scorers_say_direction_and_units():
    sentiment, concise = get_scorer("sentiment"), get_scorer("concise")
    assert sentiment(["q", "q"], ["What a wonderful day!", "This is awful."]) == pytest.approx(
        [0.6114, -0.4588], abs=1e-3
    )
    assert concise(["q"], ["three short words"]) == [-3.0]
    assert sentiment.describe() == {
        "scorer": "sentiment",
        "direction": "higher",
        "units": "VADER compound in [-1, 1]",
        "length": False,
    }
    assert concise.length and not sentiment.length
    assert concise.better(-2.0, -5.0) and not concise.better(-5.0, -2.0)


def test_readability_is_flesch_reading_ease_offline():
    """Plain words in short sentences read easier than long words in one long sentence; the
    syllables come from pyphen's shipped dictionaries (nothing is downloaded)."""
    readability = get_scorer("readability")
    plain, dense = readability(
        ["q", "q"],
        ["The cat sat on the mat. It was warm.", "Photosynthesis facilitates extraordinarily complicated conversions."],
    )
    # 206.835 - 1.015 * (9 words / 2 sentences) - 84.6 * (9 syllables / 9 words)
    assert plain == pytest.approx(206.835 - 1.015 * 4.5 - 84.6, abs=0.01)
    assert dense < 0 < plain and readability(["q"], [""]) == [0.0]
    assert readability.describe()["units"] == "Flesch reading ease" and readability.direction == "higher"


def test_held_out_judges_measure_the_same_things_another_way():
    """TextBlob's lexicon, characters and Dale-Chall's familiar words, all offline."""
    textblob, characters, dale_chall = (get_scorer(n) for n in ("textblob", "characters", "dale_chall"))
    happy, sad = textblob(["q", "q"], ["What a wonderful, great day!", "This is a terrible, awful day."])
    assert sad < 0 < happy <= 1
    assert characters(["q"], ["  four chars? no, more  "]) == [-20.0] and characters.length
    familiar, unfamiliar = dale_chall(
        ["q", "q"], ["The dog ran to the big red house.", "Photosynthesis facilitates conversions."]
    )
    # every word familiar: 0.1579 * 0% + 0.0496 * 8 words per sentence
    assert familiar == pytest.approx(0.0496 * 8, abs=0.01) and unfamiliar > 9
    assert dale_chall.direction == "lower" and dale_chall(["q"], [" "]) == [19.5]


def test_a_python_function_by_file_or_module_with_its_direction(tmp_path, monkeypatch):
    module = tmp_path / "my_objectives.py"
    module.write_text(
        textwrap.dedent(
            """
            def length(prompt, response):
                return len(prompt) + len(response)
            length.direction = "lower"
            length.units = "characters"
            """
        )
    )
    by_file = get_scorer(f"python:{module}:length")
    assert by_file(["ab"], ["cde"]) == [5.0]
    assert by_file.direction == "lower" and by_file.units == "characters" and by_file.better(1.0, 2.0)
    monkeypatch.syspath_prepend(str(tmp_path))
    by_name = get_scorer("python:my_objectives:length")
    assert by_name(["ab"], ["c"]) == [3.0]
    sys.modules.pop("my_objectives", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sentimental", "unknown scorer 'sentimental'"),
        ("reward_model:/no/such/folder", "'/no/such/folder' does not exist"),
        ("python:no_such_module_xyz:f", "'no_such_module_xyz' cannot be imported"),
        ("python:json:no_such_function", "has no function 'no_such_function'"),
        ("python:/no/such/file.py:f", "'/no/such/file.py' does not exist"),
        ("python:json", "must be 'python:<module>:<function>'"),
    ],
)
def test_bad_scorer_names_are_errors_that_name_them(spec, message):
    with pytest.raises(ScorerError, match=message.replace("(", r"\(")):
        get_scorer(spec)


@pytest.mark.parametrize("chat_template", [True, False])
def test_a_reward_model_scores_in_batches_as_it_scores_alone(test_manifest, tmp_path, chat_template):
    """With a chat template the conversation is scored; without, (prompt, response) as a text pair."""
    folder = build_reward_model(test_manifest.parent / "ref", tmp_path / "rm", chat_template=chat_template)
    scorer = get_scorer(f"reward_model:{folder}")
    prompts = ["Tell me about the sea.", "Hi", [{"role": "user", "content": "What is rain?"}]]
    responses = ["The sea is large and deep and full of fish.", "Hello.", "Water that falls."]
    batched = scorer(prompts, responses)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    alone = []
    with torch.no_grad():
        for prompt, response in zip(["Tell me about the sea.", "Hi", "What is rain?"], responses, strict=True):
            if chat_template:
                chat = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
                text = tokenizer.apply_chat_template(chat, tokenize=False)
                inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            else:
                inputs = tokenizer(prompt, response, return_tensors="pt")
            alone.append(model(**inputs).logits[0, 0].item())
    assert batched == pytest.approx(alone, abs=1e-4)
    assert len(set(batched)) == 3 and scorer.direction == "higher"


def test_a_classifier_with_several_outputs_is_not_a_reward_model(test_manifest, tmp_path):
    folder = build_reward_model(test_manifest.parent / "ref", tmp_path / "classifier", labels=2)
    with pytest.raises(ScorerError, match="has 2 outputs; a reward model has one"):
        get_scorer(f"reward_model:{folder}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScorerError, match="not a model folder"):
        get_scorer(f"reward_model:{tmp_path / 'empty'}")
