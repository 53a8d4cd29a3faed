"""Translate an :class:`AnnotationSpec` into Label Studio terms and answers back.

* :func:`label_config`: the labelling interface (XML) from the spec's display and questions;
* :func:`instruction_html`: the guideline shown beside the task;
* :func:`task_payload`: one import row (data plus the pre-annotation as a prediction);
* :func:`to_result` / :func:`from_result`: answers <-> Label Studio annotation results.

Task data keeps our own keys under a ``cf_`` prefix: ``cf_item_id`` (the item id, which is how a
task is matched to its item), ``cf_assigned`` (annotators routed to it) and ``cf_gold``.
"""

from __future__ import annotations

import html
import re
from typing import Any
from xml.sax.saxutils import quoteattr

from annotation.routing import Assignment
from annotation.spec import AnnotationSpec, Answers, PreAnnotation, Question

ITEM_KEY = "cf_item_id"
TARGET_NAME = "cf_target"  # the object every question is attached to (toName)


def _object_tags(spec: AnnotationSpec) -> tuple[list[str], str]:
    tags: list[str] = []
    target = ""
    for d in spec.display:
        label = f'<Header value={quoteattr(d.label)} size="5"/>' if d.label else ""
        if d.kind == "header":
            tags.append(f'<View style="margin-bottom: 8px">{label}<Header value={quoteattr("$" + d.field)} size="4"/></View>')
            continue
        name = TARGET_NAME if d.highlight and not target else f"cf_{d.field}"
        if d.kind == "dialogue":
            body = f'<Paragraphs name={quoteattr(name)} value={quoteattr("$" + d.field)} layout="dialogue" nameKey="speaker" textKey="text"/>'
        elif d.kind == "image":
            body = f'<Image name={quoteattr(name)} value={quoteattr("$" + d.field)}/>'
        else:
            body = f'<Text name={quoteattr(name)} value={quoteattr("$" + d.field)}/>'
        style = "background: #fff4cc; border-left: 4px solid #e0a100; padding: 8px 12px" if d.highlight else "padding: 4px 0"
        tags.append(f"<View style={quoteattr(style)}>{label}{body}</View>")
        if name == TARGET_NAME:
            target = name
    if not target:  # questions attach to the first non-header object
        for d in spec.display:
            if d.kind != "header":
                target = f"cf_{d.field}"
                break
    if not target:
        raise ValueError(f"spec {spec.name!r}: label studio needs at least one text, dialogue or image to label")
    return tags, target


def _flag_choice(q: Question) -> str:
    return q.prompt


def _control(q: Question, target: str) -> str:
    head = f"<Header value={quoteattr(q.prompt)} size=\"5\"/>"
    required = ' required="true"' if q.required else ""
    if q.kind in ("multi_choice", "single_choice"):
        kind = "multiple" if q.kind == "multi_choice" else "single-radio"
        choices = "".join(
            f"<Choice value={quoteattr(c)}" + (f" hint={quoteattr(q.hints[c])}" if c in q.hints else "") + "/>" for c in q.choices
        )
        if q.searchable:  # a Taxonomy: a dropdown with a search box; maxUsages 1 keeps it a single choice
            return f'{head}<Taxonomy name={quoteattr(q.name)} toName={quoteattr(target)} maxUsages="1" minWidth="400"{required}>{choices}</Taxonomy>'
        return f'{head}<Choices name={quoteattr(q.name)} toName={quoteattr(target)} choice="{kind}" showInline="true"{required}>{choices}</Choices>'
    if q.kind == "flag":
        return f'<Choices name={quoteattr(q.name)} toName={quoteattr(target)} choice="multiple"><Choice value={quoteattr(_flag_choice(q))}/></Choices>'
    value = f' value={quoteattr("$" + q.source)}' if q.source else ""
    return f'{head}<TextArea name={quoteattr(q.name)} toName={quoteattr(target)} editable="true" maxSubmissions="1" rows="3"{value}{required}/>'


def _shown_when(q: Question) -> str:
    if q.shown_when is None:
        return ""
    tag, choice = q.shown_when
    return f' visibleWhen="choice-selected" whenTagName={quoteattr(tag)} whenChoiceValue={quoteattr(choice)}'


def label_config(spec: AnnotationSpec) -> str:
    objects, target = _object_tags(spec)
    controls = "".join(f'<View style="margin-top: 10px"{_shown_when(q)}>{_control(q, target)}</View>' for q in spec.questions)
    return f"<View>{''.join(objects)}{controls}</View>"


def instruction_html(markdown: str) -> str:
    """A small markdown subset (headings, lists, paragraphs, **bold**, *italic*) as HTML."""

    def inline(text: str) -> str:
        text = html.escape(text, quote=False)
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)

    out: list[str] = []
    para: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if list_tag:
            out.append(f"</{list_tag}>")
            list_tag = ""

    for raw in markdown.splitlines():
        line = raw.strip()
        bullet = re.match(r"^(-|\d+\.)\s+(.*)", line)
        if not line:
            flush()
        elif line.startswith("#"):
            flush()
            level = min(6, len(line) - len(line.lstrip("#")))
            out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif bullet:
            tag = "ul" if bullet.group(1) == "-" else "ol"
            if para:
                out.append(f"<p>{inline(' '.join(para))}</p>")
                para.clear()
            if list_tag != tag:
                if list_tag:
                    out.append(f"</{list_tag}>")
                out.append(f"<{tag}>")
                list_tag = tag
            out.append(f"<li>{inline(bullet.group(2))}</li>")
        elif list_tag and raw.startswith("  "):  # continuation of a list item
            out[-1] = out[-1][: -len("</li>")] + " " + inline(line) + "</li>"
        else:
            if list_tag:
                out.append(f"</{list_tag}>")
                list_tag = ""
            para.append(line)
    flush()
    return "\n".join(out)


def to_result(spec: AnnotationSpec, answers: Answers) -> list[dict[str, Any]]:
    """Label Studio annotation/prediction ``result`` for ``answers``."""
    _, target = _object_tags(spec)
    result = []
    for name, value in answers.items():
        q = spec.question(name)
        if q.kind == "multi_choice":
            if not value:
                continue  # no region: nothing ticked
            choices = list(value)
        elif q.kind == "single_choice" and q.searchable:
            result.append({"from_name": name, "to_name": target, "type": "taxonomy", "value": {"taxonomy": [[value]]}})
            continue
        elif q.kind == "single_choice":
            choices = [value]
        elif q.kind == "flag":
            if not value:
                continue
            choices = [_flag_choice(q)]
        else:
            result.append({"from_name": name, "to_name": target, "type": "textarea", "value": {"text": [value]}})
            continue
        result.append({"from_name": name, "to_name": target, "type": "choices", "value": {"choices": choices}})
    return result


def from_result(spec: AnnotationSpec, result: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Answers from a Label Studio ``result``, and the problems that make them untrustworthy.

    Unanswered multi-choice questions and flags read as empty / false (ticking nothing is an
    answer); an unanswered single choice or text stays absent.
    """
    answers: dict[str, Any] = {}
    problems: list[str] = []
    known = {q.name: q for q in spec.questions}
    for region in result or []:
        name = region.get("from_name")
        q = known.get(name)
        if q is None:
            problems.append(f"unknown question {name!r} (the server's labelling config differs from recipe {spec.name} v{spec.version})")
            continue
        value = region.get("value") or {}
        if q.kind == "text":
            texts = value.get("text") or []
            answers[name] = "\n".join(texts) if isinstance(texts, list) else str(texts)
            continue
        if q.searchable:
            paths = value.get("taxonomy")
            if paths == []:  # emptied in the UI: unanswered
                continue
            if not isinstance(paths, list) or len(paths) != 1 or not isinstance(paths[0], list) or not paths[0]:
                problems.append(f"{name}: expected one choice, got {value!r}")
            else:
                answers[name] = paths[0][-1]  # a flat taxonomy: the path is the choice itself
            continue
        choices = value.get("choices")
        if not isinstance(choices, list):
            problems.append(f"{name}: expected choices, got {value!r}")
            continue
        if q.kind == "multi_choice":
            answers[name] = sorted(set(choices), key=lambda c: q.choices.index(c) if c in q.choices else len(q.choices))
        elif q.kind == "single_choice":
            answers[name] = choices[0] if len(choices) == 1 else choices
        elif choices and choices != [_flag_choice(q)]:
            problems.append(f"{name}: unknown flag value {choices!r} (expected {_flag_choice(q)!r})")
        else:
            answers[name] = bool(choices)
    for q in spec.questions:
        if q.name not in answers and q.kind == "multi_choice":
            answers[q.name] = []
        elif q.name not in answers and q.kind == "flag":
            answers[q.name] = False
    problems.extend(spec.check_answers(answers))
    return answers, problems


def task_payload(spec: AnnotationSpec, assignment: Assignment, pre: PreAnnotation | None) -> dict[str, Any]:
    item = assignment.item
    data = dict(item.payload)
    data.update({ITEM_KEY: item.id, "cf_assigned": ",".join(assignment.annotators), "cf_gold": assignment.is_gold})
    row: dict[str, Any] = {"data": data}
    if pre is not None:
        row["predictions"] = [{"model_version": pre.model, "score": pre.score, "result": to_result(spec, pre.answers)}]
    return row
