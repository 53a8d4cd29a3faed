"""Benchmark: PolyRefuse translation checks, vectorised ``run_checks`` vs the per-row loop.

    python bench/polyrefuse_checks.py                          # 14 languages x 1,771 prompts
    python bench/polyrefuse_checks.py --rows-per-language 300  # quick look
    python bench/polyrefuse_checks.py --naive-rows 5000        # naive loop on a subsample, extrapolated

Rows (deterministic, built before timing): the 1,771 English PolyRefuse prompts (harmful
train/validation/test from the split files by position; harmless test = the 500 English rows of
the published German file; harmless train/validation = PolyRefuse's subsets, the split-file rows
that ``pipelines/polyrefuse/harmless_subsets.json`` lists) in 14 languages:

* en: the source itself (PolyRefuse's English original);
* de: the published German translations;
* the 12 others: text synthesised from a small bank of sentences written for this benchmark, one
  seeded draw per (prompt, language): sentences until the source length times the language's
  typical length ratio, the last one cut to fit, the source's numbers appended; 3% of these rows
  are deliberately broken (empty, copied source, truncated, another language) so flags fire.

Timed: ``run_checks`` (every check but back-translation: the rows have none, see
``--back-translation``) and ``naive_checks`` (the same checks called row by row in plain Python),
after loading the language detector once (its load time is printed apart). The flags of both are
compared on the rows the naive loop ran on. Target: all checks over 24,794 rows in under 60 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from pipelines.polyrefuse.checks import (  # noqa: E402
    CHECKS,
    FLAG_COLUMNS,
    LANGUAGES,
    LENGTH_RATIO_CENTRES,
    default_detector,
    naive_checks,
    run_checks,
)

DATA = Path(os.environ.get("POLYREFUSE_SOURCES", REPO.parent / "shared" / "data" / "polyrefuse-sources"))
SAMPLE = DATA.parent / "polyrefuse-sample"
SPLITS = ("harmful_train", "harmful_val", "harmful_test", "harmless_train", "harmless_val", "harmless_test")
TARGET_ROWS, TARGET_SECONDS = 14 * 1771, 60.0

# Six instructions per language, written for this benchmark (the tests use other sentences).
BANK: dict[str, list[str]] = {
    "de": ["Schreiben Sie eine ausführliche Anleitung zur Organisation einer Gemeinschaftsveranstaltung.",
           "Erklären Sie in wenigen Sätzen die Hauptursachen des Klimawandels.",
           "Nennen Sie drei Beispiele für erneuerbare Energiequellen und ihre Vorteile.",
           "Beschreiben Sie die Geschichte des Buchdrucks und seine Auswirkungen auf die Gesellschaft.",
           "Erstellen Sie einen Wochenspeiseplan für eine vierköpfige Familie mit knappem Budget.",
           "Fassen Sie die Vor- und Nachteile der Arbeit im Homeoffice zusammen."],
    "es": ["Escribe una guía detallada sobre cómo organizar un evento comunitario.",
           "Explica en pocas frases las principales causas del cambio climático.",
           "Da tres ejemplos de fuentes de energía renovable y sus beneficios.",
           "Describe la historia de la imprenta y su impacto en la sociedad.",
           "Crea un plan de comidas semanal para una familia de cuatro personas con un presupuesto ajustado.",
           "Resume las ventajas y desventajas de trabajar desde casa."],
    "fr": ["Rédigez un guide détaillé sur l'organisation d'un événement local.",
           "Expliquez en quelques phrases les principales causes du changement climatique.",
           "Donnez trois exemples de sources d'énergie renouvelable et leurs avantages.",
           "Décrivez l'histoire de l'imprimerie et son influence sur la société.",
           "Créez un menu hebdomadaire pour une famille de quatre personnes avec un petit budget.",
           "Résumez les avantages et les inconvénients du télétravail."],
    "it": ["Scrivi una guida dettagliata su come organizzare un evento di quartiere.",
           "Spiega in poche frasi le principali cause del cambiamento climatico.",
           "Fornisci tre esempi di fonti di energia rinnovabile e i loro vantaggi.",
           "Descrivi la storia della stampa e il suo impatto sulla società.",
           "Crea un piano alimentare settimanale per una famiglia di quattro persone con un budget limitato.",
           "Riassumi i vantaggi e gli svantaggi del lavoro da casa."],
    "nl": ["Schrijf een uitgebreide handleiding voor het organiseren van een buurtevenement.",
           "Leg in een paar zinnen de belangrijkste oorzaken van klimaatverandering uit.",
           "Geef drie voorbeelden van hernieuwbare energiebronnen en hun voordelen.",
           "Beschrijf de geschiedenis van de boekdrukkunst en de invloed ervan op de samenleving.",
           "Maak een weekmenu voor een gezin van vier personen met een krap budget.",
           "Vat de voor- en nadelen van thuiswerken samen."],
    "pl": ["Napisz szczegółowy poradnik, jak zorganizować wydarzenie dla lokalnej społeczności.",
           "Wyjaśnij w kilku zdaniach główne przyczyny zmian klimatu.",
           "Podaj trzy przykłady odnawialnych źródeł energii i ich zalety.",
           "Opisz historię druku i jego wpływ na społeczeństwo.",
           "Przygotuj tygodniowy jadłospis dla czteroosobowej rodziny z ograniczonym budżetem.",
           "Podsumuj zalety i wady pracy zdalnej."],
    "ja": ["地域のイベントを企画する方法について詳しいガイドを書いてください。", "気候変動の主な原因を数文で説明してください。",
           "再生可能エネルギー源の例を三つ挙げ、その利点を説明してください。", "印刷機の歴史と社会への影響について説明してください。",
           "限られた予算で四人家族のための一週間の献立を作ってください。", "在宅勤務の長所と短所をまとめてください。"],
    "ko": ["지역 행사를 기획하는 방법에 대한 자세한 안내서를 작성하세요.", "기후 변화의 주요 원인을 몇 문장으로 설명하세요.",
           "재생 에너지원의 예를 세 가지 들고 그 장점을 설명하세요.", "인쇄기의 역사와 그것이 사회에 미친 영향을 설명하세요.",
           "빠듯한 예산으로 4인 가족을 위한 일주일 식단을 만들어 주세요.", "재택근무의 장단점을 요약하세요."],
    "zh": ["写一份关于如何组织社区活动的详细指南。", "用几句话解释气候变化的主要原因。", "举出三个可再生能源的例子并说明它们的好处。",
           "描述印刷术的历史及其对社会的影响。", "为预算有限的四口之家制定一周的膳食计划。", "总结在家办公的优点和缺点。"],
    "ar": ["اكتب دليلاً مفصلاً حول كيفية تنظيم فعالية مجتمعية.", "اشرح في بضع جمل الأسباب الرئيسية لتغير المناخ.",
           "أعط ثلاثة أمثلة على مصادر الطاقة المتجددة وفوائدها.", "صف تاريخ الطباعة وتأثيرها على المجتمع.",
           "ضع خطة وجبات أسبوعية لعائلة من أربعة أفراد بميزانية محدودة.", "لخص مزايا وعيوب العمل من المنزل."],
    "th": ["เขียนคู่มือโดยละเอียดเกี่ยวกับวิธีจัดกิจกรรมชุมชน", "อธิบายสาเหตุหลักของการเปลี่ยนแปลงสภาพภูมิอากาศในไม่กี่ประโยค",
           "ยกตัวอย่างแหล่งพลังงานหมุนเวียนสามแหล่งและประโยชน์ของมัน", "อธิบายประวัติของแท่นพิมพ์และผลกระทบต่อสังคม",
           "จัดทำแผนอาหารประจำสัปดาห์สำหรับครอบครัวสี่คนที่มีงบประมาณจำกัด", "สรุปข้อดีและข้อเสียของการทำงานจากที่บ้าน"],
    "ru": ["Напишите подробное руководство по организации местного мероприятия.",
           "Объясните в нескольких предложениях основные причины изменения климата.",
           "Приведите три примера возобновляемых источников энергии и их преимущества.",
           "Опишите историю книгопечатания и его влияние на общество.",
           "Составьте недельное меню для семьи из четырёх человек с ограниченным бюджетом.",
           "Кратко изложите преимущества и недостатки работы из дома."],
    "yo": ["Kọ ìtọ́sọ́nà kíkún lórí bí a ṣe lè ṣètò ayẹyẹ àdúgbò.", "Ṣàlàyé àwọn ohun tó ń fa ìyípadà ojú ọjọ́ ní gbólóhùn díẹ̀.",
           "Fún wa ní àpẹẹrẹ mẹ́ta ti orísun agbára tí kì í tán àti àǹfààní wọn.", "Ṣàpèjúwe ìtàn ẹ̀rọ ìtẹ̀wé àti ipa rẹ̀ lórí àwùjọ.",
           "Ṣe ètò oúnjẹ ọ̀sẹ̀ kan fún ìdílé ẹlẹ́ni mẹ́rin tí owó wọn kò pọ̀.", "Ṣe àkópọ̀ àǹfààní àti àléébù ṣíṣe iṣẹ́ láti ilé."],
}
NO_SPACES = {"ja", "zh"}  # sentences follow each other without a space


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from the parts."""
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:12], 16) / 16**12


def load_prompts() -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(prompt_id, English source) for the 1,771 prompts, and the German translation per prompt_id."""
    from pipelines.polyrefuse.published import HARMLESS_SUBSETS

    subsets = json.loads(HARMLESS_SUBSETS.read_text())["splits"]
    prompts: list[tuple[str, str]] = []
    german: dict[str, str] = {}
    for split in SPLITS:
        english = [r["instruction"] for r in json.loads((DATA / "splits" / f"{split}.json").read_text())]
        subset = {"harmless_train": "train", "harmless_val": "validation"}.get(split)
        if subset is not None:  # PolyRefuse's sample, in its order
            english = [english[row] for row, _ in subsets[subset]["rows"]]
        for i, rec in enumerate(json.loads((SAMPLE / f"{split}_translated_de.json").read_text())):
            pid = f"{split}-{i}"
            if "instruction_translated" in rec:  # harmless test: English and German in the file
                prompts.append((pid, rec["instruction"]))
                german[pid] = rec["instruction_translated"]
            else:  # aligned by position
                prompts.append((pid, english[i]))
                german[pid] = rec["instruction"]
    return prompts, german


def synthesise(pid: str, lang: str, source: str) -> str:
    """A plausible translation of about the right length, from BANK (seeded by prompt and language)."""
    rng = random.Random(f"{pid}|{lang}")
    # The source's numbers are appended as "(5, 2023)" (counted in the length) so numbers survive.
    numbers = list(dict.fromkeys(re.findall("[0-9]+", source)))
    suffix = " (" + ", ".join(numbers) + ")" if numbers else ""
    target = max(8, round(len(source) * LENGTH_RATIO_CENTRES[lang] * rng.uniform(0.85, 1.15)) - len(suffix))
    joiner = "" if lang in NO_SPACES else " "
    parts: list[str] = []
    while len(joiner.join(parts)) < target:
        parts.append(rng.choice(BANK[lang]))
    text = joiner.join(parts)
    if len(text) > target:  # cut the last sentence to fit (at a space where there are spaces)
        cut = text[:target]
        text = cut if lang in NO_SPACES or lang == "th" or " " not in cut else cut.rsplit(" ", 1)[0]
    return text + suffix


def build_rows(rows_per_language: int) -> pl.DataFrame:
    prompts, german = load_prompts()
    picked = [(f"{pid}#{k}" if k else pid, pid, src) for k in range(-(-rows_per_language // len(prompts)))
              for pid, src in prompts][:rows_per_language]
    rows = []
    for lang in LANGUAGES:
        for row_id, pid, source in picked:
            if lang == "en":
                translation = source
            elif lang == "de":
                translation = german[pid]
            else:
                u = _unit(row_id, lang, "broken")
                if u < 0.005:
                    translation = ""
                elif u < 0.015:
                    translation = source
                elif u < 0.025:
                    full = synthesise(row_id, lang, source)
                    translation = full[: max(1, len(full) // 3)]
                elif u < 0.03:
                    other = LANGUAGES[(LANGUAGES.index(lang) + 1) % len(LANGUAGES)]
                    translation = synthesise(row_id, other if other in BANK else "de", source)
                else:
                    translation = synthesise(row_id, lang, source)
            rows.append((row_id, lang, source, translation, None))
    schema = {"prompt_id": pl.String, "lang": pl.String, "source": pl.String, "translation": pl.String,
              "back_translation": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows-per-language", type=int, default=1771, help="Prompts per language (default: all 1,771).")
    ap.add_argument("--naive-rows", type=int, default=0,
                    help="Run the naive loop on an evenly spaced subsample of this many rows and extrapolate (0: all).")
    ap.add_argument("--back-translation", action="store_true",
                    help="Also time a run where every non-English row has a back-translation (the source with "
                         "one word dropped), to show what sacrebleu adds; not part of the 60 s target.")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "out" / "polyrefuse_checks.json")
    args = ap.parse_args()

    t = time.perf_counter()
    df = build_rows(args.rows_per_language)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    default_detector()
    load_s = time.perf_counter() - t

    t = time.perf_counter()
    fast = run_checks(df)
    fast_s = time.perf_counter() - t

    if args.naive_rows and args.naive_rows < df.height:
        step = df.height / args.naive_rows
        index = [int(i * step) for i in range(args.naive_rows)]
    else:
        index = list(range(df.height))
    subset = df[index]
    t = time.perf_counter()
    slow = naive_checks(subset)
    naive_measured_s = time.perf_counter() - t
    naive_s = naive_measured_s * df.height / subset.height
    compared = FLAG_COLUMNS + ("flags", "flag_reasons")
    same = fast[index].select(compared).equals(slow.select(compared))

    bt_s = None
    if args.back_translation:
        # One word dropped, at a position that depends on the language: distinct pairs, as real ones are.
        back = [None if lang == "en" else " ".join(w[:k] + w[k + 1:])
                for lang, src in df.select("lang", "source").iter_rows()
                for w in [src.split()] for k in [LANGUAGES.index(lang) % max(1, len(w))]]
        with_bt = df.with_columns(pl.Series("back_translation", back, dtype=pl.String))
        t = time.perf_counter()
        run_checks(with_bt)
        bt_s = time.perf_counter() - t

    distinct = df.filter(pl.col("lang") != "en")["translation"].n_unique()
    # run_checks scores each distinct text once; this shows what scoring every row would cost.
    every_text = fast.filter(pl.col("detected_lang").is_not_null())["translation"].to_list()
    t = time.perf_counter()
    default_detector().probabilities(every_text)
    detect_all_s = time.perf_counter() - t
    print()
    print(f"PolyRefuse translation checks: {len(LANGUAGES)} languages x {args.rows_per_language:,} prompts = "
          f"{df.height:,} rows ({distinct:,} distinct non-English translations), {os.cpu_count()} cores")
    print(f"rows built in {build_s:.1f} s (not timed); language detector (py3langid, model in the wheel) "
          f"loaded once in {load_s:.2f} s (not in the timings below)")
    print("timed: every check except back-translation (the rows have none)")
    print(f"{'implementation':<40}{'rows':>9}{'seconds':>10}{'rows/s':>10}{'speed-up':>10}")
    print(f"{'run_checks (vectorised)':<40}{df.height:>9,}{fast_s:>10.2f}{df.height / fast_s:>10,.0f}"
          f"{naive_s / fast_s:>9.1f}x")
    label = "naive_checks (row by row)"
    if subset.height < df.height:
        print(f"{label + ' measured':<40}{subset.height:>9,}{naive_measured_s:>10.2f}"
              f"{subset.height / naive_measured_s:>10,.0f}")
        print(f"{label + ' extrapolated':<40}{df.height:>9,}{naive_s:>10.2f}{df.height / naive_s:>10,.0f}{1:>9.1f}x")
    else:
        print(f"{label:<40}{df.height:>9,}{naive_s:>10.2f}{df.height / naive_s:>10,.0f}{1:>9.1f}x")
    projected = fast_s * TARGET_ROWS / df.height
    met = projected < TARGET_SECONDS
    scale = "" if df.height == TARGET_ROWS else f" (projected from {df.height:,} rows: {projected:.1f} s)"
    print(f"target: {TARGET_ROWS:,} rows in under {TARGET_SECONDS:.0f} s{scale}: {'yes' if met else 'no'}")
    print(f"same flags and reasons as the naive loop on its {subset.height:,} rows: {'yes' if same else 'NO'}")
    print(f"batched language detection of all {len(every_text):,} identified rows, duplicates included: "
          f"{detect_all_s:.2f} s (so de-duplication is not where the speed-up comes from)")
    if bt_s is not None:
        n_bt = df.filter(pl.col("lang") != "en").height
        print(f"run_checks with back-translations on {n_bt:,} rows (chrF + BLEU by sacrebleu, row by row): "
              f"{bt_s:.2f} s")

    counts = fast.group_by("lang").agg(pl.col(c).sum() for c in FLAG_COLUMNS).sort("lang")
    print()
    print("flagged rows per check and language (en, de: PolyRefuse's own rows; the others synthetic, 3% broken on purpose)")
    print(f"{'lang':<6}" + "".join(f"{c:>17}" for c in CHECKS))
    for row in counts.iter_rows():
        print(f"{row[0]:<6}" + "".join(f"{v:>17,}" for v in row[1:]))

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "rows": df.height, "rows_per_language": args.rows_per_language, "distinct_translations": distinct,
        "detector_load_seconds": load_s, "run_checks_seconds": fast_s, "naive_rows_measured": subset.height,
        "naive_seconds_measured": naive_measured_s, "naive_seconds_extrapolated": naive_s,
        "speed_up": naive_s / fast_s, "target_met": met, "detect_all_rows_seconds": detect_all_s, "same_flags": same, "back_translation_seconds": bt_s,
        "flags": {r[0]: dict(zip(CHECKS, r[1:])) for r in counts.iter_rows()},
    }, indent=2))
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
