"""Writes the hand-written r/ChangeMyView sample used to check the SAD construction rules.

    python -m pipelines.sad.sample.make_sample            # rewrites reddit/*.jsonl[.zst]

Every submission below exercises one or more rules on purpose; ``CASES.md`` lists them and
``expected.json`` holds the outcome written by hand from the rules. The output is deterministic:
timestamps are derived from the position of each node, comments are emitted in created_utc order
(interleaving submissions, like real dumps), and zstd compression runs single-threaded.

Tree notation: ``C(id, author, body, *replies, **extra_fields)``; ``OP`` stands for the
submission's author. Comment ids are mnemonic base-36 strings: ``s03a7`` is the 7th turn of the
chain that starts with top-level comment ``a`` of submission ``s03``.
"""

from __future__ import annotations

import json
from pathlib import Path

import zstandard

HERE = Path(__file__).resolve().parent
OUT = HERE / "reddit"

OP = "<OP>"
T0 = 1609459200  # 2021-01-01T00:00:00Z

# The real CMV moderators' footnote, as Pushshift stores it (entities escaped).
from pipelines.sad.generator import FOOTNOTE  # noqa: E402
DELTABOT = (
    "Confirmed: 1 delta awarded to /u/{user} ([1∆](/r/changemyview/wiki/user/{user})).\n\n"
    "^[Delta System Explained](https://www.reddit.com/r/changemyview/wiki/deltasystem) "
    "^| ^[Deltaboards](https://www.reddit.com/r/changemyview/wiki/deltaboards)"
)


def C(cid: str, author: str, body: str, *replies: dict, **extra: object) -> dict:
    return {"id": cid, "author": author, "body": body, "replies": replies, "extra": extra}


def S(sid: str, author: str, title: str, selftext: str, *comments: dict, **extra: object) -> dict:
    return {"id": sid, "author": author, "title": title, "selftext": selftext, "comments": comments, "extra": extra}


SUBMISSIONS: list[dict] = [
    # ------------------------------------------------------------------ s01: "CMV:", footnote, 9 words
    S(
        "s01",
        "brewed_awakening",
        "CMV: Tipping culture in the US should be replaced by proper wages",
        "I worked as a server for four years and I still think tipping is a bad system. Servers' income "
        "depends on the mood of strangers, on the day of the week, and frankly on how attractive they are. "
        "Restaurants get to advertise lower menu prices while customers quietly pay the rest of the wage. "
        "If owners paid a proper wage and raised prices, everyone would know the real cost of the meal and "
        "workers would have a predictable income.\n\nI know servers in busy places make more with tips, but "
        "that is exactly the problem: the system rewards the lucky shifts and punishes everyone else.\n\n"
        + FOOTNOTE,
        C(
            "s01a",
            "mapleleaf_dan",
            "The servers themselves are the biggest defenders of tipping though. At good restaurants a server "
            "can clear forty dollars an hour, and no owner is going to pay that as a flat wage. If you abolish "
            "tips, the best servers leave for the places that still allow them, and service gets worse "
            "everywhere else.",
            C(
                "s01a2",
                OP,
                "That is true for fine dining, but most servers do not work at those places. They work at diners "
                "and chains where a slow Tuesday means going home with thirty dollars for a whole shift. I care "
                "more about the median server than the top ten percent.",
                C(
                    "s01a3",
                    "mapleleaf_dan",
                    "But the median server still tends to out-earn what a kitchen worker makes, and kitchen staff "
                    "are paid a flat wage already. If tips disappear, owners will set the server wage near the "
                    "cook's wage, not above it. So the median server probably takes a pay cut too.",
                    C(
                        "s01a4",
                        OP,
                        "That is a real risk, and I admit I was assuming the wage would land where average tips "
                        "are now. If it lands at the cook's wage, servers lose money in the short term. I still "
                        "think tip pooling with the kitchen points the same way, though.",
                        C(
                            "s01a5",
                            "saltflat_sally",
                            "Tip pooling is already legal in a lot of states and it mostly ends up with managers "
                            "skimming it.",
                        ),
                    ),
                ),
            ),
        ),
        C(
            "s01b",
            "quietriver",
            "Europe mostly works the way you describe, and the service there is noticeably slower and less "
            "attentive. Tips are a feedback mechanism. Take them away and the incentive to check on a table "
            "every ten minutes goes away with them.",
            C(
                "s01b2",
                OP,
                "Slower service in Europe is mostly a cultural choice, not a lack of incentive. Nobody there wants "
                "a server hovering over them, and they are not rushing you out so the table turns over faster.",
                C("s01b3", "quietriver", "Fair point, I had not thought about that angle."),
            ),
        ),
        C(
            "s01c",
            "harbor_lights",
            "Customers like the feeling of control that tipping gives them, even if it is mostly an illusion. Any "
            "restaurant that tries to go tip-free gets complaints about higher menu prices and usually reverses "
            "the policy within a year.",
            C(
                "s01c2",
                "gravel_and_grit",
                "Danny Meyer tried exactly this in New York and rolled it back in 2020, so there is at least one "
                "real example.",
            ),
        ),
        C(
            "s01d",
            "AutoModerator",
            "Note: Your thread has **not** been removed. Your post's topic seems to be fairly common on this "
            "subreddit. Similar posts can be found through our [wiki page](https://www.reddit.com/r/changemyview/"
            "wiki/populartopics) or via the search function.",
            distinguished="moderator",
            stickied=True,
        ),
    ),
    # ------------------------------------------------------------------ s02: "cmv -", two OP replies, 10 words
    S(
        "s02",
        "homeoffice_hana",
        "cmv - Remote work is better for most office employees",
        "Since 2020 I have worked fully remote, and I am more productive than I ever was in an open-plan "
        "office. I save ninety minutes of commuting a day, I can focus without people tapping me on the "
        "shoulder, and I actually see my kids in the evening. Most office work is email, documents and calls, "
        "and none of that needs a shared building. I think companies pushing return-to-office are mostly "
        "protecting managers who measure work by seeing people at their desks.",
        C(
            "s02a",
            "grindset_greg",
            "Remote work is great for experienced people who already have a network and know the job. It is "
            "terrible for juniors. Nobody learns by watching a senior handle a difficult client over a Zoom call "
            "they were not invited to. The people who benefit most from offices are the ones least likely to "
            "post about it.",
            C(
                "s02a2",
                OP,
                "Mentoring is a real problem, but it is solvable with deliberate practice: pairing sessions, open "
                "calls, recorded walkthroughs. Offices did not mentor juniors well either; they just made it "
                "happen by accident sometimes.",
                C(
                    "s02a3",
                    "grindset_greg",
                    "Accidental learning is most of the learning, though. You overhear how someone negotiates, you "
                    "see how a manager handles a bad week. Scheduled pairing sessions cover the things people "
                    "think to teach, not the things they do without noticing.",
                    C(
                        "s02a4",
                        OP,
                        "Okay, that distinction between deliberate and accidental learning is a good one. I would "
                        "still say most employees are not juniors, so for most people remote wins, but I will "
                        "grant that juniors lose something real.",
                    ),
                ),
                C(
                    "s02a3y",
                    "grindset_greg",
                    "Also, on your productivity point: surveys where people rate their own productivity are not "
                    "evidence. Everyone thinks they are more productive at home. The studies that measure output "
                    "directly are much more mixed.",
                ),
            ),
            C(
                "s02a2x",
                OP,
                "One more thing I forgot: a lot of juniors these days would rather learn remotely than relocate to "
                "an expensive city for an entry-level salary. The office is not free for them either.",
                C(
                    "s02a3x",
                    "grindset_greg",
                    "Relocation is a fair cost, but hybrid solves that better than fully remote. Two days a week in "
                    "an office an hour away is doable; moving across the country is not, and fully remote gives up "
                    "the in-person part completely.",
                ),
            ),
        ),
        C(
            "s02c",
            "tessellate",
            "The commute argument cuts both ways. Plenty of people use the commute as the only boundary between "
            "work and home, and without it they end up answering messages at ten at night.",
            C("s02c2", OP, "That is fair, but it ignores the commuting time entirely."),
        ),
    ),
    # ------------------------------------------------------------------ s03: "CMV-", a 12-utterance chain
    S(
        "s03",
        "wild_at_heart_92",
        "CMV-Zoos do more harm than good for the animals they keep",
        "Even the best zoos keep animals in enclosures that are a tiny fraction of their natural range. "
        "Elephants walk dozens of kilometres a day in the wild; in a zoo they pace the same loop. Orcas and "
        "polar bears show stereotypic behaviour like swaying and pacing that basically never happens in the "
        "wild. Conservation is the usual defence, but most zoo animals are not endangered and will never be "
        "released. I think zoos exist mainly for our entertainment, and the animals pay for it.",
        C(
            "s03a",
            "wildcard_wendy",
            "Modern accredited zoos are not the concrete cages you are describing. A lot of species do well in "
            "captivity and live longer than they would in the wild, because they get vet care and never starve. "
            "Lumping every zoo together with roadside menageries makes your argument easier than it should be.",
            C(
                "s03a2",
                OP,
                "Living longer is not the same as living well. A lion that lives twenty years pacing a fence line "
                "is not obviously better off than one that lives twelve years hunting. I agree accredited zoos are "
                "better, but better than terrible is a low bar.",
                C(
                    "s03a3",
                    "wildcard_wendy",
                    "How would you measure living well, though? Researchers use things like stress hormones, "
                    "breeding success and stereotypic behaviour, and for many species those numbers in good zoos "
                    "look similar to wild populations. Elephants and big carnivores are the exception, and I would "
                    "agree those should be phased out.",
                    C(
                        "s03a4",
                        OP,
                        "If you agree elephants, orcas and big carnivores should go, that is most of what people "
                        "actually come to see. A zoo of meerkats and frogs would struggle to sell tickets, and then "
                        "the conservation money disappears too.",
                        C(
                            "s03a5",
                            "wildcard_wendy",
                            "Not really. Aquariums and reptile houses are among the most visited exhibits, and a "
                            "lot of the conservation work is for species nobody has heard of. Amphibian breeding "
                            "programs during the chytrid fungus outbreak saved several frog species from "
                            "extinction outright.",
                            C(
                                "s03t",
                                "ferntree_fiona",
                                "The Panamanian golden frog is a good example of that, it basically only "
                                "survives in captivity now.",
                            ),
                            C(
                                "s03a6",
                                OP,
                                "I did not know the chytrid programs were that significant. But that supports a "
                                "world with a few specialised breeding centres, not hundreds of zoos showing "
                                "animals to crowds. Why do we need the public exhibit part at all?",
                                C(
                                    "s03a7",
                                    "wildcard_wendy",
                                    "Because the public exhibit is what pays for the breeding centres and builds "
                                    "the political support to protect habitats. People donate to save animals "
                                    "they have seen and cared about. Nobody funds a frog they only know from a "
                                    "spreadsheet.",
                                    C(
                                        "s03a8",
                                        OP,
                                        "So the argument is that a smaller number of animals suffer somewhat in "
                                        "order to fund the survival of whole species. That is more defensible "
                                        "than I gave it credit for, even if I am not comfortable with it.",
                                        C(
                                            "s03a9",
                                            "wildcard_wendy",
                                            "Pretty much, yes. And the suffering part is shrinking as enclosure "
                                            "design improves. The trade-off looks very different for a well-run "
                                            "modern zoo than for the places you are probably picturing.",
                                            C(
                                                "s03a10",
                                                OP,
                                                "Alright, you have shifted my view on the conservation side, so "
                                                "here is a delta: Δ. I still think the big mammals should not be "
                                                "there, but zoos as a whole are not as harmful as I claimed.",
                                                C("s03d", "DeltaBot", DELTABOT.format(user="wildcard_wendy")),
                                                C(
                                                    "s03a11",
                                                    "wildcard_wendy",
                                                    "Thanks, that is a fair place to land. For what it is worth, "
                                                    "I also think the big mammals should be the first to go.",
                                                ),
                                            ),
                                        ),
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
        C(
            "s03b",
            "ostrich_otto",
            "Zoos are literally prisons for animals, no other way to see it.",
        ),
    ),
    # ------------------------------------------------------------------ s04: odd title, two underscore lines, quotes, URLs
    S(
        "s04",
        "bike_lane_bea",
        "  CMV:   Cities should ban private cars from \tdowntown &amp; turn parking into parks  ",
        "Downtown streets are for people, not parking. In most city centres, a huge share of the land is given "
        "to moving and storing private cars that bring in a small share of the visitors. Pedestrianised "
        "centres in Europe show that shops do fine or better when cars are banned.\n\n___\n\nSome context: I "
        "live in a mid-sized US city where the downtown is half parking lots and empty after six.\n\n"
        + FOOTNOTE,
        C(
            "s04a",
            "parking_pete",
            "Banning cars outright hurts the people with the fewest options: disabled residents, tradespeople "
            "hauling tools, and anyone coming from a suburb with no transit. European centres work because the "
            "transit network was built first. Ban cars before you have the buses and trains, and downtown just "
            "dies faster.",
            C(
                "s04a2",
                OP,
                "I agree transit has to come first, and exemptions for disabled drivers and deliveries are "
                "obviously needed. But cities use the lack of transit as a reason never to start. Taking the "
                "parking away is what creates the demand for the buses.",
            ),
        ),
        C(
            "s04b",
            "curb_appeal",
            "&gt; Downtown streets are for people, not parking.\n&gt; Pedestrianised centres in Europe show that "
            "shops do fine\n\nShops do fine in Copenhagen, sure. But US evidence is thinner: [this report]"
            "(https://www.transportation.gov/mission/health/Pedestrian-Malls) found many 1970s pedestrian malls "
            "were later reopened to cars because they emptied out. See also www.strongtowns.org/journal/"
            "pedestrian-malls, which is sympathetic to you and still admits it.",
            C(
                "s04b2",
                OP,
                "The failed pedestrian malls mostly banned cars from a few blocks in a dying downtown and changed "
                "nothing else. That is a fair warning about doing it halfway, but not an argument against doing it "
                "properly.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s05: no prefix, separator without footnote, OP top-level
    S(
        "s05",
        "hawaiian_harold",
        "Pineapple belongs on pizza and the hate is mostly performative",
        "Sweet and salty is one of the most popular flavour combinations there is. Nobody blinks at prosciutto "
        "with melon, honey on cheese or bacon with maple syrup. Pineapple with ham on a pizza is the same idea, "
        "and most people who claim to hate it have never actually tried a good one. I think the hate is a meme "
        "people repeat because it is fun to be outraged about food.\n\n____\n\nEdit: to everyone telling me "
        "Italians would disagree, Italians also disagree about cream in carbonara, so that is not a real "
        "argument.",
        C(
            "s05a",
            "crust_purist",
            "The problem is not sweet and salty, it is the water. Pineapple releases a lot of juice in a hot oven, "
            "and that makes the base soggy. Prosciutto and melon are served cold and separately, so it is not the "
            "same thing at all.",
            C(
                "s05a2",
                OP,
                "Soggy pizza is a problem of bad pineapple, not pineapple itself. Canned chunks straight from the "
                "tin are wet, but if you drain them or grill fresh pineapple first, the base stays crisp.",
                C(
                    "s05a3",
                    "crust_purist",
                    "At that point you are describing a pizza that almost nobody actually serves. Judge the topping "
                    "by how it usually arrives, which is wet canned chunks on a cheap delivery pizza.",
                ),
            ),
        ),
        C(
            "s05b",
            OP,
            "Edit: a few people asked what I would recommend, so here it is: grilled pineapple, jalapeño and "
            "smoked ham on a thin crust. Try it before you judge it.",
            C(
                "s05b1",
                "salsa_verde_sam",
                "Jalapeño is doing all the work in that combination, and you know it. Take the jalapeño away and "
                "it is sweet mush again.",
                C(
                    "s05b2",
                    OP,
                    "The jalapeño helps, but I have had it without jalapeño plenty of times and it still works. The "
                    "smoked ham is what balances the sweetness.",
                ),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s06: double prefix, moderator / admin distinguished
    S(
        "s06",
        "sleepy_in_seattle",
        "CMV: CMV: Daylight saving time should be abolished",
        "Every spring we lose an hour of sleep and studies keep finding more car crashes and heart attacks in "
        "the days after the switch. The energy savings that justified it a century ago are negligible now. Pick "
        "one time, standard or daylight, I honestly do not care which, and stop changing the clocks twice a "
        "year.\n\n" + FOOTNOTE,
        C(
            "s06a",
            "mod_elena",
            "Sorry, u/night_owl_nate – your comment has been removed for breaking Rule 1: Direct responses to a "
            "CMV post must challenge at least one aspect of OP's stated view.",
            distinguished="moderator",
        ),
        C(
            "s06b",
            "sunrise_sam",
            "Picking one time is where this always falls apart. Permanent daylight time means winter sunrises "
            "after nine in the north, and the US already tried it in 1974 and repealed it within a year because "
            "people hated it.",
            C(
                "s06b2",
                OP,
                "That is why I said I do not care which. Permanent standard time avoids the dark winter mornings "
                "completely. The point is to stop switching, not to keep the long summer evenings.",
                C(
                    "s06b3",
                    "sunrise_sam",
                    "Moderator note here rather than a reply: please keep this thread civil, several comments "
                    "below have been removed for Rule 2.",
                    distinguished="moderator",
                ),
                C(
                    "s06b3x",
                    "sunrise_sam",
                    "Permanent standard time loses the summer evenings, and that is the part people actually vote "
                    "for. Every state bill I have seen locks in daylight time, not standard time.",
                    distinguished="admin",
                ),
            ),
        ),
        C(
            "s06c",
            "tick_tock_tina",
            "The switch costs a few bad days a year, while the extra hour of evening light in summer is used for "
            "months. People exercise more, shop more and there is less crime when it gets dark later.",
            C(
                "s06c2",
                OP,
                "A few bad days that come with a measurable spike in heart attacks is not a small cost. I would also "
                "like to see the evidence on crime, because the studies I have seen are small and pretty mixed.",
                C(
                    "s06c3",
                    "tick_tock_tina",
                    "Removed your earlier reply by accident, restoring it here: the crime study is Doleac and "
                    "Sanders, 2015, look it up.",
                    C(
                        "s06c4",
                        OP,
                        "Thanks for restoring it, I found the Doleac and Sanders paper and will read it tonight.",
                    ),
                    distinguished="moderator",
                ),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s07: [deleted] / [removed]
    S(
        "s07",
        "bubble_sheet_ben",
        "CMV: Standardized tests are a fairer admissions tool than essays",
        "Essays reward applicants who can pay for coaching, have parents who write well, or simply know what "
        "admissions officers want to hear. A standardized test is the same for everyone, costs little, and free "
        "prep material is everywhere. Dropping tests did not make admissions fairer; it made them more opaque.",
        C(
            "s07a",
            "[deleted]",
            "[deleted]",
            C(
                "s07a2",
                OP,
                "Whoever deleted this had a good point about test prep costs, so I will answer it anyway for the "
                "record.",
            ),
        ),
        C(
            "s07b",
            "gpa_gloria",
            "Test scores correlate strongly with family income, so a test is not the same for everyone in any "
            "meaningful sense. The rich kid took three practice courses and sat the exam four times.",
            C(
                "s07b2",
                OP,
                "[removed]",
                C(
                    "s07b3",
                    "gpa_gloria",
                    "Not sure why your reply was removed, but the point about retakes stands regardless of the "
                    "rules.",
                ),
            ),
        ),
        C(
            "s07c",
            "[deleted]",
            "Essays at least show whether someone can write, which is the main thing they will do in college. A "
            "multiple choice test measures how fast you fill in bubbles.",
            C(
                "s07c2",
                OP,
                "Writing ability matters, but the essay measures the writing of whoever helped with it. Timed, "
                "proctored writing would be a fair test; a take-home essay is not.",
            ),
        ),
        C(
            "s07d",
            "holistic_hal",
            "Essays also let students explain context a score cannot, like working thirty hours a week or caring "
            "for a sibling. A test score strips out exactly the information that would help a disadvantaged "
            "applicant.",
            C(
                "s07d2",
                OP,
                "Context can be captured in a short structured form without a polished essay. The essay is where "
                "the coaching advantage is biggest, so it is the worst place to collect that information.",
                C("s07d3", "[deleted]", "[deleted]"),
            ),
        ),
        C("s07e", "angry_ant", "[removed]"),
    ),
    # ------------------------------------------------------------------ s08: URLs, quote-only short reply
    S(
        "s08",
        "diesel_dave_2",
        "CMV - Electric cars are overhyped as a climate solution",
        "Electric cars still need huge batteries made with lithium, cobalt and nickel, mined in terrible "
        "conditions and shipped around the world. Battery production emits a huge amount of CO2 before the car "
        "ever drives a single mile. Meanwhile the electricity in many countries still comes from coal. I think "
        "the real climate solutions are better public transport and fewer cars, and EVs are mostly a way to "
        "keep selling cars.",
        C(
            "s08a",
            "watt_wanda",
            "Lifecycle analyses disagree with you. See https://www.iea.org/reports/global-ev-outlook-2023 and "
            "www.carbonbrief.org/factcheck-how-electric-vehicles-help-to-tackle-climate-change/ for the numbers. "
            "Even on a coal-heavy grid the battery emissions are repaid within a couple of years, and the grid "
            "keeps getting cleaner over the life of the car.",
            C(
                "s08a2",
                OP,
                "Those studies assume the car is driven for fifteen years and the battery never needs replacing. "
                "And the mining side is not a footnote: even [the battery article](https://en.wikipedia.org/wiki/"
                "Battery_(electricity)) spends a whole section on the environmental damage.",
                C(
                    "s08a3",
                    "watt_wanda",
                    "&gt; Battery production emits a huge amount of CO2 before the car ever drives a single "
                    "mile.\n\nThat debt is repaid within two years of driving.",
                ),
                C(
                    "s08a3b",
                    "watt_wanda",
                    "Battery warranties are eight years and real-world degradation data shows most packs outlive "
                    "the car. Check HTTPS://WWW.RECURRENTAUTO.COM/RESEARCH if you want fleet data rather than "
                    "assumptions.",
                ),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s09: HTML entities, &nbsp; makes the 10th word
    S(
        "s09",
        "long_weekend_lou",
        "CMV: A four-day work week &gt; a five-day week for productivity",
        "Trials in the UK, Iceland &amp; New Zealand found that output stayed the same or rose when staff moved "
        "to four days on full pay. People are not productive for forty hours anyway &mdash; most of us get "
        "maybe five good hours a day. A shorter week cuts burnout and sick days, and makes hiring easier.",
        C(
            "s09a",
            "pilot_pam",
            "Those trials were run by companies that volunteered because they expected it to work. Productivity "
            "studies &amp; pilot programs with self-selected firms say very little about a hospital, a warehouse "
            "or a school. When the &quot;results&quot; come from the firms that wanted them, I&#39;d be careful: "
            "output per hour &lt; output per week for most jobs that involve coverage.",
            C(
                "s09a2",
                OP,
                "Coverage jobs are a fair exception, but they can rotate shifts so that each person works four days "
                "while the place stays open five. The UK&nbsp;pilot included a few care providers and they managed "
                "it. If 5 &gt; 4 in hours but not in output, the extra day is just presence.",
                C(
                    "s09a3",
                    "pilot_pam",
                    "Fair enough, but&nbsp;the pilot companies were all self-selected volunteers.",
                    C(
                        "s09a4",
                        OP,
                        "They were, and I won&amp;#39;t pretend that the results generalise perfectly to every "
                        "employer.",
                    ),
                ),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s10: same title as s01; one X, two top-level comments
    S(
        "s10",
        "bartender_bo",
        "CMV: Tipping culture in the US should be replaced by proper wages",
        "I have been bartending for six years and I want to get rid of tips, even though I make good money from "
        "them. My income swings wildly from week to week, I cannot get a mortgage on tip income, and half my "
        "coworkers are afraid to take a sick day. A fixed wage with service included would make the job a real "
        "career.",
        C(
            "s10a",
            "regular_rita",
            "Mortgage lenders do count tip income if it is reported on your tax return for two years. The real "
            "issue is that a lot of tip income never gets reported, which is a separate problem from tipping "
            "itself.",
            C(
                "s10a2",
                OP,
                "That is technically true, but the tips that get reported are the card tips, and bars are still "
                "full of cash. Even reported tips are averaged in a way that makes lenders nervous when the numbers "
                "jump around.",
            ),
        ),
        C(
            "s10b",
            "regular_rita",
            "Also, a service charge is just a tip you cannot refuse. Restaurants that added a mandatory twenty "
            "percent charge got a wave of one-star reviews from people who felt tricked by it.",
            C(
                "s10b2",
                OP,
                "The backlash was mostly about hiding the charge at the bottom of the bill. If the menu prices "
                "include it from the start, nobody feels tricked, because there is nothing extra to notice.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s11: third parties, self-replies
    S(
        "s11",
        "worried_parent_wes",
        "CMV: Social media does more harm than good for teenagers",
        "Since smartphones became universal around 2012, rates of anxiety, depression and self-harm among "
        "teenage girls have risen sharply in several countries. Social media replaces sleep, in-person "
        "friendship and unstructured play with constant comparison. I think schools should ban phones and "
        "platforms should enforce a real minimum age of sixteen.",
        C(
            "s11a",
            "linden_k",
            "The correlation is real, but the effect sizes in the big studies are tiny, about the same as eating "
            "potatoes in one famous analysis. Teenagers also use these platforms to find friends when they are "
            "isolated at school, especially LGBT kids in small towns.",
            C(
                "s11a2",
                OP,
                "The potato comparison comes from averaging all screen use together. When researchers look at "
                "heavy social media use among girls specifically, the effect is several times larger. Averages "
                "hide the group that is actually being hurt.",
                C(
                    "s11a3",
                    "nosy_neighbour",
                    "Honestly I think both of you are overthinking this, kids have always found something for "
                    "adults to panic about.",
                    C(
                        "s11a4",
                        OP,
                        "Adults panicked about comics and television too, but that does not mean every panic is "
                        "wrong. Some worries turn out to be right.",
                    ),
                ),
                C(
                    "s11a3x",
                    "linden_k",
                    "Even the larger estimates explain only a few percent of the variance in wellbeing. A phone "
                    "ban would take away the benefits for every kid to address a risk concentrated in a minority "
                    "of them.",
                ),
            ),
        ),
        C(
            "s11b",
            "devils_advocado",
            "Banning phones at school is fine, but an age limit of sixteen would be enforced by making everyone "
            "upload an ID, which is a privacy disaster for adults too.",
            C(
                "s11b2",
                "grumpy_gus",
                "Age verification can be done without uploading documents, several countries already use "
                "privacy-preserving tokens for this.",
                C(
                    "s11b3",
                    OP,
                    "Exactly, there are token schemes that prove age without revealing identity, so the privacy "
                    "objection is not fatal.",
                ),
            ),
        ),
        C(
            "s11c",
            "quiet_quokka",
            "Most of the rise in teen depression is in diagnosis, not in actual illness. Screening in schools and "
            "less stigma mean more kids get counted than before.",
            C(
                "s11c2",
                "quiet_quokka",
                "To add to that, the same period also saw big changes in how hospitals code self-harm, which "
                "inflates the trend lines.",
                C(
                    "s11c3",
                    OP,
                    "Changes in coding cannot explain why the rise is so much larger for girls than for boys, since "
                    "the coding rules apply to both.",
                ),
            ),
        ),
        C(
            "s11d",
            "stoic_steph",
            "Phones are a symptom, not the cause. The same years saw rising academic pressure, less independent "
            "play and more anxious parenting, and social media gets blamed because it is the most visible change.",
            C(
                "s11d2",
                OP,
                "Those other changes are real, but they were already underway before 2012 and do not explain the "
                "sudden jump. The timing lines up with the smartphone much better than with anything else.",
                C(
                    "s11d3",
                    OP,
                    "Also, the same jump shows up at around the same time in several countries with very different "
                    "school systems, which points to a global cause.",
                    C(
                        "s11d4",
                        "stoic_steph",
                        "Several countries also had the financial crisis and austerity at roughly the same time, "
                        "so the global cause could be economic.",
                    ),
                ),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s12: subreddit spelled "ChangeMyView"
    S(
        "s12",
        "atomic_annie",
        "CMV: Nuclear power is the best option to decarbonize the grid",
        "Nuclear plants produce almost no carbon, run around the clock and take up very little land. France "
        "decarbonised most of its grid in about fifteen years in the 1970s and 80s. Wind and solar are great "
        "but intermittent, and storage at grid scale is still expensive. If we are serious about climate "
        "change, nuclear should be at the centre of the plan.",
        C(
            "s12a",
            "solar_sol",
            "The problem is cost and time. Recent Western projects like Vogtle and Hinkley Point C went years over "
            "schedule and billions over budget. In the time it takes to build one reactor, you can build several "
            "times the capacity in solar and wind plus batteries.",
            C(
                "s12a2",
                OP,
                "Those projects were first-of-a-kind builds in countries that had forgotten how to build reactors. "
                "South Korea and the UAE built the same designs on time and near budget, which shows that the cost "
                "problem is about practice, not physics.",
                C(
                    "s12a3",
                    "solar_sol",
                    "That might be true in principle, but we need to cut emissions this decade, not after we have "
                    "relearned how to build reactors. Renewables are getting cheaper every year while nuclear "
                    "costs keep rising.",
                    subreddit="ChangeMyView",
                ),
                subreddit="ChangeMyView",
            ),
            subreddit="ChangeMyView",
        ),
        subreddit="ChangeMyView",
    ),
    # ------------------------------------------------------------------ s13: another subreddit
    S(
        "s13",
        "cereal_skeptic",
        "Breakfast is the most overrated meal of the day",
        "I have skipped breakfast for ten years and I have never felt better. The idea that it is the most "
        "important meal was pushed by cereal companies in the early twentieth century.",
        C(
            "s13a",
            "toast_tom",
            "Skipping breakfast works for you, but plenty of people get headaches and can't concentrate until "
            "they eat something in the morning.",
            C(
                "s13a2",
                OP,
                "Most of those people are just used to eating at seven, and the headaches go away after a week or "
                "two of adjustment.",
                C(
                    "s13a3",
                    "toast_tom",
                    "Maybe, but telling diabetics or kids to push through a week of headaches is not great advice.",
                    subreddit="unpopularopinion",
                ),
                subreddit="unpopularopinion",
            ),
            subreddit="unpopularopinion",
        ),
        subreddit="unpopularopinion",
    ),
    # ------------------------------------------------------------------ s14: deleted submission
    S(
        "s14",
        "[deleted]",
        "CMV: Voting should be compulsory in national elections",
        "[deleted]",
        C(
            "s14a",
            "turnout_tara",
            "Compulsory voting forces people who know nothing about the issues to pick someone at random, which "
            "adds noise rather than legitimacy.",
            C("s14a2", "[deleted]", "[deleted]"),
        ),
        C(
            "s14b",
            "ballot_box_bill",
            "Australia has had compulsory voting for a century and it works fine, the donkey vote is a tiny share "
            "of ballots.",
        ),
    ),
    # ------------------------------------------------------------------ s15: removed submission
    S(
        "s15",
        "renter_rachel",
        "CMV: Landlords provide no value to society",
        "[removed]",
        C(
            "s15a",
            "property_pat",
            "Landlords take on the risk of repairs, vacancies and bad tenants, which is exactly the service renters "
            "pay for.",
            C(
                "s15a2",
                OP,
                "Tenants pay for that risk many times over, and the landlord keeps the appreciation of the asset on "
                "top of the rent.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s16: link post, empty selftext
    S(
        "s16",
        "econ_ed",
        "CMV: This article proves that rent control makes housing worse",
        "",
        C(
            "s16a",
            "tenant_tess",
            "One study from San Francisco does not prove anything about rent control in general, the design "
            "matters a lot.",
            C(
                "s16a2",
                OP,
                "It is not just one study, the result that rent control reduces supply shows up in almost every "
                "serious analysis.",
            ),
        ),
        url="https://www.brookings.edu/articles/what-does-economic-evidence-tell-us-about-the-effects-of-rent-control/",
        domain="brookings.edu",
        is_self=False,
    ),
    # ------------------------------------------------------------------ s17: root of 9 words
    S(
        "s17",
        "whisker_wendell",
        "CMV: Cats are better pets than dogs",
        "Title says it all, really. Change my view please.",
        C(
            "s17a",
            "good_boy_gary",
            "Dogs will actually go on adventures with you, cats just tolerate your presence when it suits them.",
            C(
                "s17a2",
                OP,
                "Cats tolerating you is the whole appeal, you know the affection is real when they do show it.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s18: selftext is only the footnote
    S(
        "s18",
        "comma_chameleon",
        "CMV: The Oxford comma should be mandatory",
        FOOTNOTE,
        C(
            "s18a",
            "ap_style_amy",
            "Newspapers have dropped the Oxford comma for decades and nobody gets confused, context resolves almost "
            "every ambiguous list.",
            C(
                "s18a2",
                OP,
                "Context resolves most lists, but not all of them, and a rule that removes ambiguity every time is "
                "better than one that usually works.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s19: OP's account deleted, text kept
    S(
        "s19",
        "[deleted]",
        "CMV: Homework in primary school is mostly useless",
        "Research on homework for children under eleven finds little to no benefit for achievement, while it "
        "clearly eats into play, sleep and family time. Teachers assign it because parents expect it, not "
        "because it works.",
        C(
            "s19a",
            "teacher_tom_uk",
            "Homework in primary school is not mainly about achievement, it is about building the habit of working "
            "independently before secondary school.",
        ),
    ),
    # ------------------------------------------------------------------ s20: moderator announcement
    S(
        "s20",
        "mod_elena",
        "META: Reminder about Rule B and soapboxing",
        "We have seen a rise in posts where the OP is not open to changing their view. Please remember that "
        "Rule B requires you to be willing to have your view changed. Posts that are soapboxing will be "
        "removed.",
        C(
            "s20a",
            "meta_mike",
            "Could you clarify how many replies an OP needs to make before a post is considered engaged rather "
            "than soapboxing?",
        ),
        distinguished="moderator",
        stickied=True,
    ),
    # ------------------------------------------------------------------ s21: only chains of 2
    S(
        "s21",
        "bagging_area_bri",
        "CMV: Self-checkout machines are worse for everyone",
        "Self-checkouts were sold as a convenience, but in practice customers now do unpaid work scanning and "
        "bagging while a single employee supervises eight machines. Every other trip, the machine flags an "
        "unexpected item in the bagging area and you wait for help anyway.",
        C(
            "s21a",
            "scan_stan",
            "For a small basket self-checkout is much faster than waiting behind someone with a full trolley, and "
            "plenty of people prefer not to chat with a cashier at all.",
            C("s21a2", OP, "Sure, but that is not really what I meant."),
        ),
        C(
            "s21b",
            "till_tilly",
            "Stores keep self-checkouts because they reduce labour costs, and those savings are part of why grocery "
            "prices are not even higher than they are.",
        ),
    ),
    # ------------------------------------------------------------------ s22: chain of exactly 3, DeltaBot
    S(
        "s22",
        "print_only_pia",
        "CMV: Learning cursive is a waste of school time",
        "Children spend many hours learning a second way to write letters that they will almost never use as "
        "adults. Typing and clear print handwriting are what people actually need. Cursive could be an optional "
        "art class for those who enjoy it.",
        C(
            "s22a",
            "loopy_lara",
            "Cursive is not just decoration: it is faster than print once learned, and some studies suggest "
            "joined-up writing helps children with dyslexia because the letters flow into each other.",
            C(
                "s22a2",
                OP,
                "I had not heard the dyslexia argument before, and if that holds up it is a real reason to teach "
                "it. Δ for that one, even if I still think most kids do not need it.",
                C("s22a3", "DeltaBot", DELTABOT.format(user="loopy_lara"), distinguished="moderator"),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s23: "cmv:", "__" line, footnote line with trailing spaces
    S(
        "s23",
        "tap_water_tim",
        "cmv: Bottled water should be banned in places with safe tap water",
        "Where tap water is safe, bottled water is a product that solves no problem. It costs hundreds of times "
        "more per litre, it fills landfills and oceans with plastic, and blind taste tests show most people "
        "cannot tell the difference.\n__\nYes, emergencies and outages are an exception.\n\n_____   \n\n"
        + FOOTNOTE[len("_____\n\n") :],
        C(
            "s23a",
            "spring_source_sue",
            "A ban punishes people in places where tap water is technically safe but tastes bad or where the pipes "
            "in older buildings still contain lead. Flint was declared safe for a long time too.",
            C(
                "s23a2",
                OP,
                "Lead pipes are a real issue, but the answer there is filters and replacing the pipes, not selling "
                "millions of single-use bottles. Filter jugs cost less than a month of bottled water.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s24: CRLF footnote; underscores in a comment are kept
    S(
        "s24",
        "allergy_al",
        "CMV: Pets should not be allowed in restaurants",
        "Restaurants are shared spaces, and people with allergies or a fear of dogs should be able to eat "
        "without an animal under the next table.\r\nService animals are a different matter, and the law already "
        "protects them.\r\n\r\n" + FOOTNOTE.replace("\n", "\r\n"),
        C(
            "s24a",
            "patio_paws",
            "Outdoor patios are where most dog-friendly restaurants allow pets, and the allergy risk outside is "
            "tiny compared to the pollen already in the air.\n\n_____\n\nP.S. I am allergic to cats myself, so I "
            "do understand the concern.",
            C(
                "s24a2",
                OP,
                "Patios are a fair compromise and I would mostly exclude them from my view. Indoors, though, the air "
                "is shared and the person with the allergy cannot just move away.",
                C(
                    "s24a3",
                    "patio_paws",
                    "Then we mostly agree, indoors is where the rules are strictest anyway, and most health codes "
                    "already ban pets there.",
                ),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s25: duplicated submission and comment lines
    S(
        "s25",
        "curator_cass",
        "CMV: Museums should return artefacts taken during colonial rule",
        "Many of the most famous objects in European museums were taken by force or under deeply unequal "
        "conditions, like the Benin Bronzes. The countries they came from now have museums of their own and are "
        "asking for them back. Keeping them because we have better climate control is a weak excuse.",
        C(
            "s25a",
            "provenance_pete",
            "Some objects were bought legally at the time, and some requesting governments are not the descendants "
            "of the people who made them. A blanket rule to return everything ignores how complicated provenance "
            "actually is.",
            C(
                "s25a2",
                OP,
                "I agree it should be case by case, but the burden should be on museums to show an object was "
                "acquired fairly. Right now it is the other way round, and claims drag on for decades.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s27: wide top level
    S(
        "s27",
        "ergonomic_erin",
        "CMV: Standing desks are a scam",
        "Standing desks became a status symbol in offices, but standing still all day is not healthier than "
        "sitting still all day. Studies link prolonged standing to varicose veins and back pain. What matters is "
        "moving around, and a fancy desk does not make anyone move more.",
        C(
            "s27a",
            "height_adjust_hank",
            "Nobody serious recommends standing all day. The point of an adjustable desk is switching positions "
            "every half hour, and that variation is what the research actually supports.",
            C(
                "s27a2",
                OP,
                "In theory, yes. In practice most people I know raise the desk for a week and then leave it at "
                "sitting height forever, so the variation never happens.",
                C(
                    "s27a3",
                    "height_adjust_hank",
                    "That is an argument about habits, not about the desk. A treadmill that nobody uses is not a "
                    "scam either; it just needs a reminder on your calendar.",
                    C(
                        "s27a4",
                        OP,
                        "If a product only works for people who have already built the habit, then it is being "
                        "sold on a promise that it mostly does not keep. That is close enough to a scam for me.",
                    ),
                ),
            ),
        ),
        C(
            "s27b",
            "lumbar_lucas",
            "For people with lower back problems, being able to stand when the pain starts is genuinely "
            "life-changing.",
            C(
                "s27b2",
                OP,
                "That is fair, and I would not call it a scam for people with a medical need, but the marketing "
                "aims at everyone.",
            ),
        ),
        C("s27c", "posture_paula", "This."),
        C(
            "s27d",
            "treadmill_ted",
            "Under-desk treadmills solve your objection completely, since walking slowly while working is real "
            "movement.",
        ),
        C(
            "s27e",
            "sedentary_sid",
            "Sitting is the new smoking was always an exaggeration, so I partly agree with you, but the desks do no "
            "harm either.",
            C(
                "s27e2",
                OP,
                "Agreed that the slogan was overblown, but spending four hundred dollars on no benefit is still a "
                "kind of harm.",
                C(
                    "s27e3",
                    "sedentary_sid",
                    "The cheap converters cost under a hundred, and plenty of employers provide them for free "
                    "anyway.",
                    C(
                        "s27e4",
                        OP,
                        "Free ones are a different story, I mostly object to people being told to buy one as a "
                        "health investment.",
                        C(
                            "s27e5",
                            "chair_charlie",
                            "Honestly the best health investment is a dog that forces you to take walks twice a "
                            "day.",
                        ),
                    ),
                ),
            ),
        ),
        C(
            "s27f",
            "kneeling_kim",
            "Kneeling chairs and balance balls were the same fad ten years ago and nobody calls them scams, they "
            "are just products.",
            C(
                "s27f2",
                OP,
                "Balance balls were also sold with health claims that never held up, so I would happily call them a "
                "scam as well.",
            ),
        ),
        C("s27g", "[deleted]", "[removed]"),
        C(
            "s27h",
            OP,
            "Thanks everyone, I am reading all the replies and will respond to as many as I can this evening.",
        ),
    ),
    # ------------------------------------------------------------------ s28: "CMV :" (space before the colon)
    S(
        "s28",
        "gacha_gabe",
        "CMV : Video game loot boxes should be regulated as gambling",
        "Loot boxes let players pay real money for a random chance at a valuable item, which is the basic "
        "structure of a slot machine. Many of the players are children, and the games use flashing lights and "
        "near-miss animations borrowed straight from casinos. Belgium and the Netherlands already treat them as "
        "gambling and the games survived.",
        C(
            "s28a",
            "skin_collector",
            "Gambling law usually requires that you can cash out the prize for money. Most loot box items cannot be "
            "sold, so legally and practically they are closer to trading cards than to slot machines.",
            C(
                "s28a2",
                OP,
                "Trading card packs target children with the same randomised rewards, so I would be fine regulating "
                "those too. And many games do let you sell items on third-party markets, which makes the cash-out "
                "test meaningless.",
                C(
                    "s28a3",
                    "skin_collector",
                    "If your rule also covers Pokemon cards and Kinder eggs, it is going to be very hard to sell "
                    "politically, which matters if you actually want a law passed.",
                ),
            ),
        ),
    ),
    # ------------------------------------------------------------------ s29: an em dash is not a prefix separator
    S(
        "s29",
        "no_spoilers_norm",
        "CMV — Spoilers are fair game one week after release",
        "After a week, anyone who really cares about a film or a show has had the chance to watch it. Expecting "
        "the whole internet to tiptoe around a plot twist for months is unreasonable. If you want to stay "
        "unspoiled, mute the keywords and stay off the subreddit.",
        C(
            "s29a",
            "slow_watcher_sue",
            "Not everyone can watch things in the first week. Parents, shift workers and people in countries where "
            "the release is later all get punished by a one-week rule.",
            C(
                "s29a2",
                OP,
                "Different release dates are a fair point, so the clock should start at the local release. But "
                "parents and shift workers have the same week as everyone else, and muting keywords costs almost "
                "nothing.",
            ),
        ),
    ),
    # ------------------------------------------------------------------ s30: 9-turn chain that forks at the end
    S(
        "s30",
        "gavel_greta",
        "CMV: Juries should be replaced by panels of professional judges",
        "Jurors are picked at random, get no training, and are asked to weigh forensic evidence, expert "
        "testimony and complicated instructions they often misunderstand. Studies of mock juries show they are "
        "swayed by how attractive or likeable a defendant is. Most countries already use professional or mixed "
        "panels and their justice systems are not less fair than ours.",
        C(
            "s30a",
            "twelve_angry_ana",
            "The point of a jury is not accuracy, it is legitimacy. A verdict from twelve ordinary citizens carries "
            "weight that a verdict from state employees never will, especially when the state is the one "
            "prosecuting.",
            C(
                "s30a2",
                OP,
                "Legitimacy built on verdicts that are less accurate is a strange thing to defend. If an innocent "
                "person is convicted, the fact that their neighbours did it rather than a judge is not much "
                "comfort.",
                C(
                    "s30a3",
                    "twelve_angry_ana",
                    "But judges are not obviously more accurate. They hear hundreds of cases, get cynical about "
                    "defendants, and develop relationships with prosecutors and police who appear in front of them "
                    "every week.",
                    C(
                        "s30a4",
                        OP,
                        "Case-hardening is a real risk, but it can be managed with rotation, mixed panels and "
                        "written reasoning that can be appealed. A jury gives no reasons at all, so nobody can "
                        "check how it reached the verdict.",
                        C(
                            "s30a5",
                            "twelve_angry_ana",
                            "Written reasoning can be written to fit a decision made for other reasons. And mixed "
                            "panels in Germany are dominated by the professional judge, so the lay members mostly "
                            "rubber-stamp.",
                            C(
                                "s30a6",
                                OP,
                                "If lay members rubber-stamp in mixed panels, that suggests professionals persuade "
                                "ordinary people easily, which is exactly why I worry about lawyers persuading "
                                "juries with theatrics.",
                                C(
                                    "s30a7",
                                    "twelve_angry_ana",
                                    "Or it suggests the lay members defer to authority, which is the problem with "
                                    "judges in the first place. Juries are the one place where nobody in the room "
                                    "outranks the defendant's peers.",
                                    C(
                                        "s30a8",
                                        OP,
                                        "I like that framing more than I expected to. Maybe the answer is better "
                                        "juries rather than no juries: plain-language instructions, note-taking, "
                                        "and being allowed to ask the witnesses questions.",
                                        C(
                                            "s30a9",
                                            "twelve_angry_ana",
                                            "Those reforms already exist in some states and jurors who can ask "
                                            "questions do understand the evidence better. I would support all of "
                                            "them.",
                                        ),
                                        C(
                                            "s30a9b",
                                            "twelve_angry_ana",
                                            "Agreed on instructions in particular. Pattern jury instructions are "
                                            "written for appeals courts, not for the twelve people who actually "
                                            "have to apply them.",
                                        ),
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    ),
]

# Comments of a submission that is not in the dump (s26): ignored.
ORPHANS = S(
    "s26",
    "transit_tanya",
    "CMV: Public transport should be free at the point of use",
    "(absent from the dump)",
    C(
        "s26a",
        "lost_lucy",
        "This thread seems to have vanished, but my point was that public transport should be free at the point "
        "of use.",
        C(
            "s26a2",
            "found_fred",
            "Free transport mostly benefits people who already ride it, the money would do more improving "
            "frequency.",
        ),
    ),
)

# Later re-fetches of already-seen ids (the first occurrence must win).
DUPLICATE_SUBMISSION = {"id": "s25", "author": "[deleted]", "selftext": "[deleted]"}
DUPLICATE_COMMENT = {"id": "s25a2", "author": "[deleted]", "body": "[removed]"}
# Lines that are not JSON objects (a truncated line and a JSON array).
BAD_LINES = ['{"id": "zz9", "link_id": "t3_s01", "parent_id": "t3_s01", "body": "trunc', '["not", "an", "object"]']


# --------------------------------------------------------------------------- writing


def _submission_row(sub: dict, index: int) -> dict:
    sid = sub["id"]
    extra = dict(sub["extra"])
    subreddit = extra.pop("subreddit", "changemyview")
    is_self = extra.pop("is_self", True)
    created = T0 + index * 5400
    row = {
        "archived": False,
        "author": sub["author"],
        "author_flair_text": None,
        "created_utc": created,
        "distinguished": extra.pop("distinguished", None),
        "domain": extra.pop("domain", f"self.{subreddit}"),
        "edited": False,
        "gilded": 0,
        "id": sid,
        "is_self": is_self,
        "link_flair_text": None,
        "locked": False,
        "name": f"t3_{sid}",
        "num_comments": 0,
        "over_18": False,
        "permalink": f"/r/{subreddit}/comments/{sid}/",
        "retrieved_on": created + 86400 * 30,
        "score": 10 + index * 7 % 90,
        "selftext": sub["selftext"],
        "stickied": extra.pop("stickied", False),
        "subreddit": subreddit,
        "subreddit_id": "t5_2w2s8" if subreddit.lower() == "changemyview" else "t5_2tk0s",
        "title": sub["title"],
        "upvote_ratio": 0.87,
        "url": extra.pop("url", f"https://www.reddit.com/r/{subreddit}/comments/{sid}/"),
    }
    assert not extra, extra
    return row


def _comment_rows(sub: dict, sub_created: int) -> list[dict]:
    rows: list[dict] = []
    counter = 0

    def walk(node: dict, parent: str, parent_created: int) -> None:
        nonlocal counter
        counter += 1
        created = parent_created + 240 + 37 * counter
        extra = dict(node["extra"])
        author = sub["author"] if node["author"] == OP else node["author"]
        subreddit = extra.pop("subreddit", sub["extra"].get("subreddit", "changemyview"))
        row = {
            "author": author,
            "author_flair_text": "1∆" if author == "wildcard_wendy" else None,
            "body": node["body"],
            "controversiality": 0,
            "created_utc": created,
            "distinguished": extra.pop("distinguished", None),
            "edited": False,
            "gilded": 0,
            "id": node["id"],
            "is_submitter": author == sub["author"] and author != "[deleted]",
            "link_id": f"t3_{sub['id']}",
            "parent_id": parent,
            "permalink": f"/r/{subreddit}/comments/{sub['id']}/_/{node['id']}/",
            "retrieved_on": created + 86400 * 30,
            "score": 1 + counter % 13,
            "stickied": extra.pop("stickied", False),
            "subreddit": subreddit,
            "subreddit_id": "t5_2w2s8" if subreddit.lower() == "changemyview" else "t5_2tk0s",
        }
        assert not extra, extra
        rows.append(row)
        for reply in node["replies"]:
            walk(reply, f"t1_{node['id']}", created)

    for top in sub["comments"]:
        walk(top, f"t3_{sub['id']}", sub_created)
    return rows


def build_rows() -> tuple[list[dict], list[dict]]:
    """(submission rows, comment rows) in the order they are written (without the bad lines)."""
    submissions: list[dict] = []
    comments: list[dict] = []
    ids: set[str] = set()
    everything = [*SUBMISSIONS, ORPHANS]
    everything.sort(key=lambda s: s["id"])
    for index, sub in enumerate(everything):
        row = _submission_row(sub, index)
        if sub is not ORPHANS:
            submissions.append(row)
        for comment in _comment_rows(sub, row["created_utc"]):
            assert comment["id"] not in ids, comment["id"]
            ids.add(comment["id"])
            comments.append(comment)
    comments.sort(key=lambda r: (r["created_utc"], r["id"]))
    for row in submissions:
        row["num_comments"] = sum(1 for c in comments if c["link_id"] == row["name"])
    # Re-fetched duplicates come last, with a later retrieved_on.
    first_sub = next(r for r in submissions if r["id"] == DUPLICATE_SUBMISSION["id"])
    submissions.append({**first_sub, **DUPLICATE_SUBMISSION, "retrieved_on": first_sub["retrieved_on"] + 86400})
    first_com = next(r for r in comments if r["id"] == DUPLICATE_COMMENT["id"])
    comments.append({**first_com, **DUPLICATE_COMMENT, "retrieved_on": first_com["retrieved_on"] + 86400})
    return submissions, comments


def _lines(rows: list[dict]) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in rows]


def write_sample(out_dir: Path = OUT) -> tuple[Path, Path]:
    submissions, comments = build_rows()
    out_dir.mkdir(parents=True, exist_ok=True)
    sub_path = out_dir / "submissions.jsonl"
    sub_path.write_text("\n".join(_lines(submissions)) + "\n", encoding="utf-8")
    comment_lines = _lines(comments)
    middle = len(comment_lines) // 2
    comment_lines[middle:middle] = BAD_LINES
    data = ("\n".join(comment_lines) + "\n").encode("utf-8")
    com_path = out_dir / "comments.jsonl.zst"
    com_path.write_bytes(zstandard.ZstdCompressor(level=19).compress(data))
    return sub_path, com_path


if __name__ == "__main__":
    for path in write_sample():
        print(path, path.stat().st_size, "bytes")
