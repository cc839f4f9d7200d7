"""Generate axo_helper/demo_data/qa.jsonl: original Q&A rows about Brindlemoor.

Brindlemoor is the fictional town described in axo_helper/demo_data/corpus.txt.
The output is committed; rerun this only to change the data:

    .venv/bin/python scripts/make_demo_qa.py

Deterministic (seeded), so reruns give the same file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "axo_helper" / "demo_data" / "qa.jsonl"

SYSTEM = "You are a friendly guide to the town of Brindlemoor. Answer briefly."

# (question phrasings, answer phrasings): every fact has several ways to ask and answer.
FACTS: list[tuple[list[str], list[str]]] = [
    (
        [
            "Where is Brindlemoor?",
            "Where can I find Brindlemoor?",
            "What kind of place is Brindlemoor?",
        ],
        [
            "Brindlemoor is a small town in a high valley between the Ossel and the Hark mountains.",
            "It is a small mountain town in a valley between two grey peaks, the Ossel and the Hark.",
        ],
    ),
    (
        ["What river runs through Brindlemoor?", "What is the river in Brindlemoor called?"],
        [
            "The Tamsin, a cold green river that runs through the middle of town.",
            "It is the Tamsin river.",
        ],
    ),
    (
        ["What is Brindlemoor known for?", "Why do people visit Brindlemoor?"],
        [
            "Three things: its clocks, its cable railway and its dark rye bread.",
            "Its clocks, its cable railway up the Ossel and its bread.",
        ],
    ),
    (
        ["Who built the first tower clock?", "Who made the clock in the market square?"],
        [
            "Edda Vorn, a locksmith, built it in 1604.",
            "A locksmith named Edda Vorn, in the year 1604.",
        ],
    ),
    (
        ["Why was the tower clock built?", "What was the reason for the market clock?"],
        [
            "Farmers kept arguing about when the market had opened, so a clock settled it.",
            "To stop the farmers arguing about when the market opened.",
        ],
    ),
    (
        ["How many hands does the tower clock have?", "Describe the tower clock."],
        [
            "It has a single hand and a bell that rings every quarter hour.",
            "One hand, and a bell that rings every fifteen minutes.",
        ],
    ),
    (
        ["How can I recognise a Brindlemoor clock?", "What does a Brindlemoor clock look like?"],
        [
            "The face is dark blue, the numbers are silver and the pendulum is shaped like a pine cone.",
            "Look for a dark blue face, silver numbers and a pine-cone pendulum.",
        ],
    ),
    (
        ["Where are the clock workshops?", "Which street has the clock makers?"],
        [
            "On Spindle Lane, which once had eleven workshops.",
            "Spindle Lane is the street of the clock makers.",
        ],
    ),
    (
        [
            "When can I visit the Vorn and Daughters workshop?",
            "Is the Vorn workshop open to visitors?",
        ],
        [
            "Yes, it opens its doors to visitors every Thursday.",
            "Every Thursday.",
        ],
    ),
    (
        ["Why should I not whistle in a clock workshop?", "Can I whistle inside a clock workshop?"],
        [
            "Please don't: the makers listen to the ticking to find faults.",
            "No. The clock makers find faults by listening to the ticking.",
        ],
    ),
    (
        ["When was the cable railway built?", "Who built the cable railway?"],
        [
            "The engineer Mattis Orrin built it in 1911.",
            "It was built in 1911 by an engineer called Mattis Orrin.",
        ],
    ),
    (
        ["How long does the cable railway take?", "How long is the ride up the Ossel?"],
        [
            "Nineteen minutes from the river station to the top of the Ossel.",
            "The ride takes nineteen minutes.",
        ],
    ),
    (
        ["What are the cable cars called?", "What colours are the railway cabins?"],
        [
            "There are two cabins: the red one is called Lark and the yellow one is called Wren.",
            "Lark is red and Wren is yellow.",
        ],
    ),
    (
        ["Where do the two cabins meet?", "What happens half way up the railway?"],
        [
            "They pass exactly half way up, at a small wooden platform where passengers wave across.",
            "The cabins pass each other half way, and passengers wave across the gap.",
        ],
    ),
    (
        ["What is at the top of the Ossel?", "What does the summit observatory do?"],
        [
            "An observatory that studies the weather and sends a forecast to town at seven every morning.",
            "A weather observatory; it sends the town a forecast each morning at seven.",
        ],
    ),
    (
        [
            "How do you reach the observatory in winter?",
            "Can you walk to the observatory in winter?",
        ],
        [
            "In winter the cable railway is the only way up.",
            "Only by the cable railway.",
        ],
    ),
    (
        ["What is Brindlemoor bread like?", "Describe the local bread."],
        [
            "A dark rye loaf with caraway and honey, baked in round tins.",
            "Dark rye with caraway and honey, baked round.",
        ],
    ),
    (
        ["Which bakery has the oldest starter?", "How old is the oldest sourdough starter?"],
        [
            "The Hollin bakery on Weir Street; its starter has been fed every day since 1788.",
            "The one at the Hollin bakery, fed daily since 1788.",
        ],
    ),
    (
        ["When is the Loaf Fair?", "What is the Loaf Fair?"],
        [
            "On the first Saturday of October bakers bring their best bread to the market square.",
            "A bread contest on the first Saturday of October; the winner keeps a copper spoon for a year.",
        ],
    ),
    (
        ["What does the winner of the Loaf Fair get?", "What is the Loaf Fair prize?"],
        [
            "A copper spoon, which they keep for a year.",
            "The winner keeps a copper spoon for one year.",
        ],
    ),
    (
        ["Can I cut a loaf on the day it was baked?", "When should I cut a Brindlemoor loaf?"],
        [
            "Wait a day: the crumb is still setting on the day it was baked.",
            "Not on baking day; the crumb needs a day to set.",
        ],
    ),
    (
        ["What is Twelve Bells Day?", "How do people know they may skate on the river?"],
        [
            "When the Tamsin ice is thick enough, the tower bell rings twelve times at noon and skating is allowed.",
            "The council rings the tower bell twelve times at noon to say the ice is safe.",
        ],
    ),
    (
        ["Why is it called the Quarrel Bridge?", "How did the Quarrel Bridge get its name?"],
        [
            "Two villages argued for six years about who should pay for it.",
            "Because the two villages that became Brindlemoor quarrelled six years over the cost.",
        ],
    ),
    (
        ["Does the Quarrel Bridge flood?", "Why is the Quarrel Bridge so high?"],
        [
            "It was built high on purpose so that the spring floods never cover it.",
            "No, it was built high so it never goes under water.",
        ],
    ),
    (
        ["How many people live in Brindlemoor?", "What is the population of Brindlemoor?"],
        [
            "About four thousand people.",
            "Around four thousand.",
        ],
    ),
    (
        ["Where is the library?", "Where is the school?"],
        [
            "The library is in the old grain store and the school is on Fernhill Road.",
            "School: Fernhill Road. Library: the old grain store.",
        ],
    ),
    (
        ["How is the mayor chosen?", "Does Brindlemoor elect its mayor?"],
        [
            "Every four years by drawing lots among the council members.",
            "The mayor is drawn by lot from the council every four years.",
        ],
    ),
    (
        ["What does tamsy mean?", "What is tamsy?"],
        [
            "A local word for the blue light just before sunrise over the river.",
            "It is dialect for the blue light over the river before sunrise.",
        ],
    ),
    (
        ["How do I get to Brindlemoor?", "How long is the train from Carrow?"],
        [
            "Take the valley train from Carrow: two hours and nine bridges.",
            "The valley train from the city of Carrow takes two hours.",
        ],
    ),
    (
        ["When is the best time to visit?", "What month should I visit Brindlemoor?"],
        [
            "Late September, when the larches turn yellow and the Loaf Fair is a week away.",
            "Late September.",
        ],
    ),
    (
        ["How long is the walk to the Hark lake?", "What is the Still Mirror?"],
        [
            "The Still Mirror is the Hark lake: about three hours up and two hours down.",
            "A lake on the Hark that reflects the summit on calm days; three hours up, two down.",
        ],
    ),
    (
        ["What is served with tea?", "Do they serve biscuits with tea?"],
        [
            "A slice of goat cheese rather than a biscuit.",
            "No biscuits: tea comes with a slice of cheese from the brown goats of the Ossel.",
        ],
    ),
]

FOLLOW_UPS: list[tuple[str, str]] = [
    ("Thanks! Anything else I should know?", "Always greet the cable railway driver."),
    ("Thank you.", "You're welcome. Enjoy Brindlemoor!"),
    ("Is that true?", "Yes, although Brindlemoor itself is a made-up town."),
]

UNKNOWN: list[tuple[str, str]] = [
    (
        "What is the phone number of the town hall?",
        "I don't know that. I only know the town's history and sights.",
    ),
    ("Who won the Loaf Fair last year?", "I don't know who won last year."),
    (
        "What is the weather tomorrow?",
        "I don't know; the observatory on the Ossel sends a forecast at seven.",
    ),
]


def rows(n: int, seed: int = 0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    # Every (question, answer) pairing once, then random extras up to n.
    pairs = [(q, a) for qs, ans in FACTS for q in qs for a in ans]
    pairs += [(q, a) for q, a in UNKNOWN]
    rng.shuffle(pairs)
    while len(pairs) < n:
        qs, ans = rng.choice(FACTS)
        pairs.append((rng.choice(qs), rng.choice(ans)))
    for q, a in pairs[:n]:
        messages: list[dict[str, str]] = []
        if rng.random() < 0.5:
            messages.append({"role": "system", "content": SYSTEM})
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if rng.random() < 0.15:
            fq, fa = rng.choice(FOLLOW_UPS)
            messages += [{"role": "user", "content": fq}, {"role": "assistant", "content": fa}]
        out.append({"messages": messages})
    return out


def main() -> None:
    data = rows(320)
    with OUT.open("w", encoding="utf-8") as fh:
        for row in data:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(data)} rows to {OUT}")


if __name__ == "__main__":
    main()
