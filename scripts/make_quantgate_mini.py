"""Writes quantgate/default_data/quantgate-mini: the small evaluation set the project ships.

Every text below was written for quantgate (no third-party data), so the gate runs end to end
offline with no --gate-data. Run from the repository root: python scripts/make_quantgate_mini.py
"""
import os

import json, random
# topic: (test query, train query, [doc texts: d0 highly relevant, d1 relevant, d2/d3 on-topic, not answering])
T = {
 "bees": ("how do honey bees tell each other where flowers are",
          "why do bees make honey",
          ["Forager honey bees perform a waggle dance on the comb: the angle of the run relative to vertical gives the direction of the food source relative to the sun, and its duration encodes the distance.",
           "Scout bees that find a rich patch of flowers return to the hive and recruit nestmates, who follow the dancer and smell the nectar she carries.",
           "Honey bees store nectar in wax cells and evaporate its water by fanning their wings until it becomes honey, food for the colony through winter.",
           "A queen bee can lay up to two thousand eggs a day during the peak of the spring build-up of the colony."]),
 "bread": ("why does bread dough rise",
           "what is sourdough starter made of",
           ["Yeast ferments the sugars in flour and releases carbon dioxide; the gluten network traps the gas, so the dough expands and rises.",
            "Kneading develops gluten strands that make dough elastic enough to hold the bubbles produced during fermentation.",
            "A sourdough starter is a mixture of flour and water colonised by wild yeasts and lactic acid bacteria, fed daily to keep it active.",
            "Bread goes stale because starch molecules recrystallise after baking, which makes the crumb firm and dry."]),
 "volcano": ("what causes a volcano to erupt",
             "where are most volcanoes located",
             ["Eruptions happen when buoyant magma rises and dissolved gases come out of solution as pressure drops, until the pressure exceeds the strength of the overlying rock.",
              "Magma with high silica content is viscous and traps gas, which is why such volcanoes tend to erupt explosively.",
              "Most active volcanoes lie along the Pacific Ring of Fire, where oceanic plates sink beneath continental plates.",
              "Volcanic soils are often very fertile because weathered ash releases potassium and phosphorus."]),
 "sleep": ("how much sleep do teenagers need",
           "what happens in the brain during deep sleep",
           ["Sleep researchers recommend that teenagers aged 13 to 18 sleep eight to ten hours each night for health and school performance.",
            "Adolescents' body clocks shift later at puberty, so many teenagers fall asleep late and are short of sleep on school days.",
            "During slow-wave sleep the brain shows large synchronised waves, and memories from the day are consolidated.",
            "Caffeine blocks adenosine receptors, which reduces the feeling of sleep pressure for several hours."]),
 "rust": ("why does iron rust",
          "how can steel be protected from corrosion",
          ["Iron rusts when it reacts with oxygen in the presence of water, forming hydrated iron oxides; salt speeds the reaction by making the water a better electrolyte.",
           "Rust is flaky and porous, so it does not protect the metal below and corrosion continues into the iron.",
           "Galvanising coats steel with zinc, which corrodes first and protects the steel as a sacrificial anode.",
           "Stainless steel contains chromium, which forms a thin passive oxide layer on its surface."]),
 "tides": ("what causes ocean tides",
           "when are spring tides highest",
           ["Tides are caused mainly by the Moon's gravity pulling on the oceans, raising two bulges of water on opposite sides of the Earth as it rotates.",
            "The Sun also raises tides, about half as strong as the Moon's, and the two combine or partly cancel depending on their alignment.",
            "Spring tides, with the largest range, occur near new and full moon when Sun, Moon and Earth are aligned.",
            "Tidal power stations use barrages or underwater turbines to turn the flow of the tide into electricity."]),
 "vaccines": ("how do vaccines train the immune system",
              "what are vaccine side effects",
              ["A vaccine presents an antigen from a pathogen so that B and T cells learn to recognise it, leaving memory cells that respond quickly to a later infection.",
               "mRNA vaccines instruct cells to make a viral protein briefly, which the immune system then learns to target.",
               "Common side effects after vaccination include a sore arm, tiredness and mild fever lasting a day or two.",
               "Herd immunity protects people who cannot be vaccinated once enough of the population is immune."]),
 "chess": ("how does the knight move in chess",
           "what is castling in chess",
           ["The knight moves in an L shape: two squares in one direction and then one square at a right angle, and it is the only piece that can jump over others.",
            "Because of its jumping move, a knight on the rim controls few squares, hence the advice that a knight on the rim is dim.",
            "Castling moves the king two squares toward a rook and places that rook on the other side of the king, if neither has moved.",
            "A pawn that reaches the last rank is promoted, usually to a queen."]),
 "coffee": ("does coffee dehydrate you",
            "how is decaffeinated coffee made",
            ["Studies show that moderate coffee drinking does not cause dehydration: the water in the drink outweighs caffeine's mild diuretic effect.",
             "Caffeine has a small diuretic effect in people who rarely consume it, and tolerance develops within days of regular intake.",
             "Decaffeinated coffee is made by soaking green beans in water or solvents, or using supercritical carbon dioxide, to extract the caffeine.",
             "Arabica beans grow at higher altitudes than robusta and contain less caffeine."]),
 "photosynthesis": ("how do plants make food from sunlight",
                    "why are leaves green",
                    ["In photosynthesis, chloroplasts use light energy to split water and fix carbon dioxide into sugars, releasing oxygen.",
                     "The light reactions make ATP and NADPH, which the Calvin cycle uses to turn carbon dioxide into glucose.",
                     "Leaves look green because chlorophyll absorbs red and blue light and reflects green wavelengths.",
                     "In autumn, chlorophyll breaks down and yellow carotenoid pigments become visible in the leaves."]),
 "bicycles": ("how does a bicycle stay upright",
              "how to fix a flat bicycle tyre",
              ["A moving bicycle stays upright mainly because the rider steers into the fall, and the front fork geometry (trail) turns the wheel toward the lean automatically.",
               "Gyroscopic effects of the spinning wheels contribute little; experiments with counter-rotating wheels still produced stable bicycles.",
               "To fix a flat tyre, remove the inner tube, find the hole, roughen the area, glue on a patch and reinflate.",
               "Derailleur gears move the chain between sprockets of different sizes to change the pedalling ratio."]),
 "glaciers": ("why are glaciers blue",
              "how fast do glaciers move",
              ["Glacier ice looks blue because dense ice absorbs red light more strongly than blue, and air bubbles have been squeezed out.",
               "Light travelling deep into compact ice loses its longer wavelengths, so thick ice appears deep blue while snow stays white.",
               "Most glaciers flow a few centimetres to a few metres per day, by internal deformation and sliding over their beds.",
               "Retreating glaciers leave moraines, ridges of rock debris that mark the former ice margin."]),
}
corpus, queries, test, train, cands = [], [], [], [], []
topics = list(T)
for ti, t in enumerate(topics):
    tq, trq, docs = T[t]
    for j, d in enumerate(docs):
        corpus.append({"_id": f"{t}-{j}", "title": "", "text": d})
    queries.append({"_id": f"q-{t}", "text": tq}); queries.append({"_id": f"t-{t}", "text": trq})
    test += [(f"q-{t}", f"{t}-0", 2), (f"q-{t}", f"{t}-1", 1)]
    train += [(f"t-{t}", f"{t}-2", 1)]
rng = random.Random(7)
for ti, t in enumerate(topics):
    others = [f"{o}-{j}" for o in topics if o != t for j in range(4)]
    ids = [f"{t}-{j}" for j in range(4)] + rng.sample(others, 4)
    rng.shuffle(ids)
    labels = {f"{t}-0": 2, f"{t}-1": 1}
    cands.append({"qid": f"q-{t}", "query": T[t][0], "candidates": [{"docid": d, "rank": i+1, "label": labels.get(d, 0)} for i, d in enumerate(ids)]})
os.chdir(os.path.join(os.path.dirname(__file__), "..", "quantgate", "default_data", "quantgate-mini"))
w = lambda f, rows: open(f, "w").write("".join(json.dumps(r) + "\n" for r in rows))
w("corpus.jsonl", corpus); w("queries.jsonl", queries); w("candidates.jsonl", cands)
for name, rows in (("test", test), ("train", train)):
    open(f"qrels/{name}.tsv", "w").write("query-id\tcorpus-id\tscore\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows))
