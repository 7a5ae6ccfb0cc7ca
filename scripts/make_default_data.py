"""Writes quantgate/default_data/quantgate-mini, the evaluation set the gate runs on when no data is given.

Every text below was written for quantgate by its authors; nothing is taken from a dataset.
Per topic: a test query, a train query (calibration only) and four passages:
  0 answers the test query (grade 2), 1 is relevant to it (grade 1),
  2 answers the train query, 3 is on the topic but answers neither.
Each test query's candidate list holds its topic's four passages and four from other topics,
in a seeded order (there is no first-stage retriever). Run from the repository root:
    python scripts/make_default_data.py
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "quantgate" / "default_data" / "quantgate-mini"
TOPICS = {
    "lighthouse": (
        "how does a lighthouse lens make its beam visible so far away",
        "why do lighthouses flash in different patterns",
        ["A Fresnel lens is built from concentric glass rings, each a thin slice of a much thicker lens; together they "
         "bend the lamp's light into one narrow, nearly parallel beam that stays bright for tens of kilometres.",
         "Before the ring lens was invented, lighthouses used polished metal mirrors behind oil lamps, and much of "
         "the light escaped sideways or upward where no ship could see it.",
         "Each light on a coast has its own character, for example two flashes every ten seconds, so a navigator "
         "who times the flashes can tell which lighthouse is in view.",
         "Many lighthouse keepers' cottages have become holiday rentals since the lights were automated."]),
    "compost": (
        "why does a compost heap get hot inside",
        "what should not go into a home compost bin",
        ["Bacteria breaking down fresh plant matter release heat as they respire; in a large, moist heap that heat "
         "cannot escape fast enough, so the centre can reach 60 degrees Celsius within a few days.",
         "Turning the heap brings oxygen to the microbes and restarts the hot phase after it has died down.",
         "Meat, dairy and cooked food attract rats and smell as they rot, and diseased plants or weeds in seed can "
         "survive a cool heap, so most gardeners keep them out of a home bin.",
         "Finished compost is dark and crumbly and smells of damp soil."]),
    "passwords": (
        "why should passwords be stored as slow salted hashes",
        "what makes a password hard to guess",
        ["A server should keep only a salted hash of each password, made with a deliberately slow function such as "
         "bcrypt or Argon2, so that a stolen database cannot be reversed quickly and identical passwords look "
         "different.",
         "The salt is a random value stored beside each hash; it stops attackers from using one precomputed table "
         "to crack every account at once.",
         "Length matters more than odd symbols: a phrase of four or five unrelated words has far more possible "
         "combinations than a short word with a digit added at the end.",
         "Password managers can fill in login forms automatically on every device a person uses."]),
    "tea": (
        "what water temperature is best for brewing green tea",
        "why does black tea taste bitter when left to steep",
        ["Green tea is best brewed with water well below boiling, around 70 to 80 degrees Celsius; boiling water "
         "pulls out bitter compounds and cooks the delicate leaves.",
         "Letting boiled water stand for a few minutes, or adding a splash of cold water, brings it down to a good "
         "temperature for green and white teas.",
         "Tannins keep dissolving the longer the leaves sit in hot water, so black tea steeped for ten minutes "
         "tastes harsh and dry compared with a three-minute cup.",
         "Tea plants grow best on hillsides with plenty of rain and acidic soil."]),
    "chain": (
        "how do you know when a bicycle chain is worn out",
        "how often should a bicycle chain be oiled",
        ["A chain checker gauge, or a ruler laid along twelve links, shows stretch from worn pins; once the chain "
         "has lengthened by about half a percent it should be replaced before it wears the sprockets.",
         "A worn chain often skips under hard pedalling, especially on the smallest rear cogs, and shifts become "
         "slow or noisy.",
         "Riders usually oil a chain every few hundred kilometres, and after any ride in the rain, wiping off the "
         "excess so that grit does not stick to it.",
         "Single-speed bicycles use wider chains than bikes with many gears."]),
    "hiccups": (
        "what causes hiccups",
        "how can you stop hiccups",
        ["A hiccup is a sudden involuntary contraction of the diaphragm followed a moment later by the vocal cords "
         "snapping shut, which makes the familiar sound; eating fast or swallowing air can set it off.",
         "Irritation of the nerves that run to the diaphragm, for example from a full stomach or fizzy drinks, is "
         "thought to trigger the reflex.",
         "Holding the breath, sipping ice-cold water or breathing into a paper bag raises carbon dioxide or "
         "stimulates the nerves, and often ends a bout of hiccups.",
         "Babies hiccup often, even before birth, and it rarely bothers them."]),
    "lightning": (
        "how is lightning formed in a thunderstorm",
        "is it safe to shelter under a tree during a thunderstorm",
        ["Inside a storm cloud, ice crystals and soft hail collide in strong updrafts; the collisions separate "
         "charge until the voltage between cloud and ground is large enough to break down the air as a spark.",
         "Thunder is the sound of the air around the lightning channel heating suddenly and expanding faster than "
         "the speed of sound.",
         "Standing under a lone tree is dangerous in a thunderstorm because lightning tends to strike tall objects "
         "and the current can jump to a person nearby; a closed car or building is much safer.",
         "Some regions of central Africa see lightning on more than two hundred days a year."]),
    "octopus": (
        "how does an octopus change colour",
        "how smart are octopuses",
        ["An octopus changes colour with chromatophores, small elastic sacs of pigment in its skin that muscles can "
         "stretch open or squeeze shut in a fraction of a second.",
         "Beneath the pigment sacs, reflecting cells scatter light and add shimmering blues and greens, and the skin "
         "can also raise bumps to copy the texture of rock or weed.",
         "In laboratory tests octopuses open screw-top jars, solve simple mazes and recognise individual keepers, "
         "and most of their neurons sit in the arms rather than the brain.",
         "Most octopus species live for only one or two years."]),
    "concrete": (
        "why does concrete need to be kept wet while it cures",
        "what is the difference between cement and concrete",
        ["Concrete hardens through a chemical reaction between cement and water, not by drying; if the surface "
         "dries out too soon the reaction stops there and the slab ends up weaker and prone to cracks.",
         "Builders cover fresh concrete with plastic sheets or wet burlap, or spray it with a curing compound, to "
         "keep the water in for the first week.",
         "Cement is only the grey powder that binds the mix; concrete is cement combined with water, sand and "
         "gravel, and the stones give it most of its bulk and strength.",
         "The Romans built harbours with a concrete made from volcanic ash that still stands today."]),
    "jetlag": (
        "why is jet lag worse when flying east",
        "how can you adjust to a new time zone faster",
        ["Flying east shortens the day, so the body clock must move earlier, and most people's internal rhythm "
         "runs slightly longer than 24 hours, which makes advancing it harder than delaying it.",
         "The brain's master clock resets mainly through light, so the timing of daylight after arrival decides "
         "how quickly sleep and hunger line up with local time.",
         "Getting morning daylight after an eastward trip, evening light after a westward one, and eating meals at "
         "local times helps the body clock shift by about an hour a day.",
         "Long-haul pilots follow strict rules on how many hours they may fly in a week."]),
    "sailing": (
        "how can a sailboat sail against the wind",
        "what does it mean to tack a sailboat",
        ["A sail works like a wing: air flowing around its curved shape creates a force mostly sideways to the wind, "
         "and the keel resists sideways motion, so the boat moves forward at an angle into the wind.",
         "No boat can sail straight into the wind; most can point within about 45 degrees of it and reach an upwind "
         "goal by zigzagging.",
         "To tack, the crew turns the bow through the wind so that the sails fill from the other side, switching "
         "from one zigzag leg to the next.",
         "Racing yachts often carry a large, light sail called a spinnaker for sailing downwind."]),
    "headphones": (
        "how do noise cancelling headphones work",
        "do noise cancelling headphones protect your hearing",
        ["Small microphones on the ear cups pick up outside sound, and the headphones play the same wave back "
         "inverted, so the two cancel in the ear; it works best on steady low hums such as engines.",
         "Sudden or high-pitched sounds like voices change too fast for the cancellation to follow, so the padding "
         "of the ear cups has to block them instead.",
         "By removing background noise, they let people listen at lower volume, which reduces the risk of hearing "
         "damage from turning music up over traffic or engine noise.",
         "Wireless headphones send audio over Bluetooth and need to be charged regularly."]),
}


def main() -> None:
    rng = random.Random(16)
    corpus, queries, test, train, lists = [], [], [], [], []
    topics = list(TOPICS)
    for topic, (test_query, train_query, passages) in TOPICS.items():
        corpus += [{"_id": f"{topic}-{i}", "title": "", "text": text} for i, text in enumerate(passages)]
        queries += [{"_id": f"q-{topic}", "text": test_query}, {"_id": f"t-{topic}", "text": train_query}]
        test += [(f"q-{topic}", f"{topic}-0", 2), (f"q-{topic}", f"{topic}-1", 1)]
        train += [(f"t-{topic}", f"{topic}-2", 2)]
    for topic in topics:
        others = [f"{o}-{i}" for o in topics if o != topic for i in range(4)]
        ids = [f"{topic}-{i}" for i in range(4)] + rng.sample(others, 4)
        rng.shuffle(ids)
        grades = {f"{topic}-0": 2, f"{topic}-1": 1}
        lists.append({"qid": f"q-{topic}", "query": TOPICS[topic][0],
                      "candidates": [{"docid": d, "rank": r, "label": grades.get(d, 0)} for r, d in enumerate(ids, 1)]})
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus", corpus), ("queries", queries), ("candidates", lists)):
        (OUT / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name, rows in (("test", test), ("train", train)):
        (OUT / "qrels" / f"{name}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
