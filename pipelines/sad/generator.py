"""Seeded generator of realistic Pushshift-style r/ChangeMyView dumps of any size.

    python -m pipelines.sad.generator --nodes 2000000 --out /tmp/cmv [--seed 0] [--compression zst]

Lines look like real Pushshift rows (compact JSON, keys in alphabetical order, the usual extra
fields: retrieved_on, edited, gilded, stickied, permalink, author_flair_text, controversiality,
is_submitter, score, ...), about 600-1200 bytes each. The trees are shaped like CMV threads: wide
top levels, OP/challenger back-and-forth chains up to ~40 turns, branches where OP or the
challenger answers twice, third parties, self-replies, deleted and removed nodes, AutoModerator
stickies, DeltaBot confirmations under OP's deltas, moderator notes, short replies, quotes, URLs,
HTML entities, the moderators' footnote, CMV prefix variants, duplicate titles, ~5% of rows from
other subreddits and a few comments whose submission is not in the dump. Comments are written in
created_utc order, so the trees of different submissions interleave, as in real dumps.

The same arguments give byte-identical files (zstd output does not depend on the thread count
either, as long as it is at least 1; gzip is written with mtime 0 and no file name).

``n_nodes`` counts the lines written (submissions + comments, every subreddit).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from array import array
from pathlib import Path
from typing import BinaryIO

import zstandard

T0 = 1_420_070_400  # 2015-01-01
CMV_SUBREDDIT_ID = "t5_2w2s8"

# --------------------------------------------------------------------------- text banks

# Claims used as titles (an entity-escaped "&amp;" is how Pushshift stores "&").
CLAIMS = (
    "Tipping culture in the US should be replaced by proper wages",
    "Remote work is better for most office employees",
    "Zoos do more harm than good for the animals they keep",
    "Cities should ban private cars from their downtowns",
    "Pineapple belongs on pizza",
    "Daylight saving time should be abolished",
    "Standardized tests are a fairer admissions tool than essays",
    "Electric cars are overhyped as a climate solution",
    "A four-day work week would be better for almost everyone",
    "Social media does more harm than good for teenagers",
    "Nuclear power is the best option to decarbonize the grid",
    "Voting should be compulsory in national elections",
    "Landlords provide no value to society",
    "Rent control makes housing shortages worse",
    "Cats are better pets than dogs",
    "The Oxford comma should be mandatory",
    "Homework in primary school is mostly useless",
    "Self-checkout machines are worse for everyone",
    "Learning cursive is a waste of school time",
    "Bottled water should be banned where tap water is safe",
    "Pets should not be allowed in restaurants",
    "Museums should return artefacts taken during colonial rule",
    "Standing desks are a scam",
    "Video game loot boxes should be regulated as gambling",
    "Spoilers are fair game one week after release",
    "Juries should be replaced by panels of professional judges",
    "College tuition should be free at public universities",
    "The penny should be taken out of circulation",
    "Billionaires should not exist",
    "Universal basic income would make people lazier",
    "The voting age should be lowered to 16",
    "Tattoos should not matter at all in job interviews",
    "Esports are real sports",
    "Participation trophies are harmful to children",
    "Cash should never be phased out",
    "Zoning laws are the main cause of the housing crisis",
    "Public transport should be free at the point of use",
    "Daily commuting by car should be taxed more heavily",
    "Remakes of classic films are almost always a bad idea",
    "Tipping should be illegal",
    "Stand-up comedy should have no off-limits topics",
    "Open offices are worse than cubicles",
    "Lab-grown meat is the only realistic way to end factory farming",
    "Gap years should be encouraged before university",
    "The Electoral College should be abolished",
    "Minimum wage should be tied to inflation automatically",
    "Smartphones should be banned in schools",
    "Space exploration is a waste of public money",
    "Unpaid internships should be illegal",
    "Audiobooks count as reading",
    "Fast fashion should carry an environmental tax",
    "Homeschooling should be more tightly regulated",
    "Marvel movies have made cinema worse",
    "Nobody needs a car in a big city",
    "Lotteries are a tax on people who are bad at maths",
    "Pharmaceutical advertising on TV should be banned",
    "Airline baggage fees are a scam",
    "Speed cameras are about revenue, not safety",
    "Most New Year's resolutions are pointless",
    "Recycling plastic is mostly a feel-good exercise",
    "Book bans in school libraries do more harm than good",
    "Zoos &amp; aquariums should stop breeding large mammals",
    "Salary ranges should be published in every job ad",
    "Reality TV is bad for the people who watch it",
    "Term limits should apply to every elected office",
    "Restaurants should list calories &amp; allergens on every menu",
    "Working from cafes is rude to other customers",
    "Physical media is still worth buying",
    "The SAT measures wealth more than ability",
    "Professional athletes are not overpaid",
)
# Combinatorial titles: SUBJECT + PREDICATE (modal predicates agree with any subject).
SUBJECTS = (
    "Tipping", "Daylight saving time", "Zoos", "Private cars in city centres", "Homework", "Standardized testing",
    "Nuclear power", "Social media for under-16s", "Cash", "Self-checkout", "Cursive", "Bottled water",
    "Loot boxes", "Jury trials", "Rent control", "Compulsory voting", "Unpaid internships", "Fast fashion",
    "Speed cameras", "Lotteries", "Homeschooling", "Gap years", "Public transport", "The penny",
    "Billionaire philanthropy", "Universal basic income", "The Electoral College", "Space tourism",
    "Factory farming", "Lab-grown meat", "Pharmaceutical advertising", "Term limits", "Open-plan offices",
    "Standing desks", "Participation trophies", "Esports scholarships", "Tattoo bans at work", "Reality TV",
    "Celebrity endorsements", "Airline baggage fees", "Sugar taxes", "Plastic recycling", "School uniforms",
    "The four-day work week", "Remote work", "Minimum wage increases", "Carbon offsets", "Crypto mining",
    "Stand-up comedy", "Film remakes", "Audiobooks", "Physical media", "Pet ownership in apartments",
    "Dog breeding", "Fireworks", "Ticket resale", "Dynamic pricing", "Toll roads",
    "Congestion charges", "Organ donation", "Jaywalking laws", "Curfews for teenagers",
    "Zero-tolerance school policies", "Grade inflation", "Legacy admissions", "Student loan forgiveness",
    "Inheritance tax", "Wealth taxes", "Land value taxes", "HOAs", "Suburban sprawl", "High-speed rail",
    "Electric scooters", "Ride-sharing apps", "Gig work", "Non-compete clauses", "Salary secrecy",
    "Daylight saving time in the tropics",
)
PREDICATES = (
    "should be banned", "should be free", "should be taxed more heavily", "should be abolished",
    "should be mandatory", "should be taught in schools", "should be illegal for under-16s",
    "will be obsolete within 20 years", "should be publicly funded", "should not be subsidised",
    "cannot be morally justified", "should be regulated like tobacco", "would be better if privatised",
    "should be decided by referendum", "would not survive without subsidies", "should be opt-out rather than opt-in",
    "should be left to the market", "should be phased out by 2030", "should be run by local governments",
    "should never have been legalised", "should be heavily restricted", "would be fine if people just left it alone",
    "should be a human right", "should be the default", "should cost far more than it does",
)
TITLE_SUFFIXES = ("", "", "", "", " in the US", " for most people", " (long post, sorry)", " - and I say this as a parent")
# (prefix, weight): the variants seen in real CMV titles.
PREFIXES = (
    ("CMV: ", 80), ("CMV - ", 5), ("cmv: ", 3), ("CMV:", 3), ("CMV-", 2), ("CMV : ", 1), ("Cmv: ", 1),
    ("", 4), ("[CMV] ", 1),
)

OP_SENTENCES = (
    "I have thought about this for a long time and I keep coming back to the same conclusion.",
    "The usual arguments on the other side seem to rely on a few cherry-picked examples.",
    "Most of the research I have read points in one direction, even if the effect is smaller than activists claim.",
    "People defend the current system mostly because it is familiar, not because it works.",
    "The costs fall on the people with the least power to complain about them.",
    "If we designed this from scratch today, nobody would choose what we have now.",
    "I am open to being wrong here, but I have not heard a convincing counterargument yet.",
    "Other countries changed their approach years ago and nothing terrible happened.",
    "The benefits are spread thinly over everyone while the harms are concentrated on a few.",
    "Every time this comes up, the debate turns into anecdotes instead of evidence.",
    "I understand the emotional appeal of the other side, but feelings are not a policy.",
    "The strongest counterargument I know is about cost, and I do not think it holds up.",
    "My own experience is limited, so I am mostly going on what I have read.",
    "This is not a fringe position; plenty of experts have argued the same thing for years.",
    "The status quo has its own risks, they are just less visible.",
    "Nobody has explained to me why the rules should be different here than anywhere else.",
    "That is a fair point, and I had not considered it in those terms.",
    "I still think the overall picture favours my view, even if you are right about the details.",
    "Your example is real, but it is an exception rather than the rule.",
    "If that were true, we would expect to see it in the data, and we mostly do not.",
    "I agree with the first half of what you said, but the conclusion does not follow.",
    "That study has been criticised for its small sample and self-selected participants.",
    "We can fix that problem without keeping the whole system as it is.",
    "You are describing the worst version of my proposal, not the one I actually made.",
    "Honestly, that moves me a little, but not all the way.",
    "I would need to see numbers before I accept that this is a common outcome.",
    "The same objection was raised last time and it turned out to be overblown.",
    "Okay, but who pays for that, and why should it be them?",
    "I think we mostly agree on the facts and disagree on how much weight to give them.",
    "That is exactly the kind of trade-off I am willing to make.",
)
CHALLENGER_SENTENCES = (
    "I think you are underestimating how much people rely on the current arrangement.",
    "The evidence you are pointing to comes from a handful of studies that have not been replicated.",
    "What happens to the people who lose out in the transition?",
    "Your argument assumes that everyone behaves rationally, which they clearly do not.",
    "There is a big difference between a good idea in theory and a policy that survives contact with reality.",
    "Other countries have different institutions, so their results do not transfer neatly.",
    "Consider the second-order effects: prices change, incentives shift, and people adapt.",
    "You are treating a trade-off as if it had only one side.",
    "Nobody is defending the system as perfect, only as better than the alternatives on offer.",
    "The costs you mention are real, but they are small compared to the benefits.",
    "If you look at the long-term trend, things have been improving without any drastic change.",
    "Your proposal would hit poorer people hardest, even if that is not the intention.",
    "Correlation is doing a lot of work in your argument.",
    "I used to believe the same thing until I worked in the industry for a few years.",
    "Think about who would actually enforce this and how.",
    "The people most affected by this mostly disagree with you, which should count for something.",
    "There are cheaper ways to get most of the benefits you want.",
    "You have picked the worst examples on the other side and generalised from them.",
    "History has several examples of exactly this going badly wrong.",
    "Even granting your premises, the conclusion is much stronger than the evidence supports.",
    "Why should the burden of proof be on the people defending the current system?",
    "The numbers you quote are averages, and averages hide a lot of variation.",
    "What would change your mind here, specifically?",
    "Small changes at the margin would solve most of the problems you describe.",
    "You are comparing the real version of one option with the ideal version of the other.",
    "This is one of those cases where the obvious fix creates a worse problem somewhere else.",
    "Plenty of people have tried this before, and the results were mixed at best.",
    "I agree that the current situation is bad, I just do not think your fix is the right one.",
    "It is easy to call something pointless when you are not the one who benefits from it.",
    "The data from the last decade tells a more complicated story than that.",
)
THIRD_PARTY_SENTENCES = (
    "Jumping in here because I think you are both missing something important.",
    "This thread is a good example of why the topic keeps coming back every month.",
    "Not OP, but I think the answer to your question is in the original post.",
    "Honestly both of you have a point and the truth is probably somewhere in the middle.",
    "Source? I keep seeing that number quoted but never with a link.",
    "I work in this field and the reality is a lot messier than either of you are describing.",
    "Great discussion, I came in agreeing with OP and now I am not so sure.",
    "Just to add some context, the law on this changed a couple of years ago.",
)
SHORT_REPLIES = (
    "This.",
    "Source?",
    "Agreed.",
    "Nope, that is just wrong.",
    "Came here to say exactly this.",
    "Thanks, I will look into that.",
    "lol no",
    "Fair enough, I see your point now.",
    "That is not what the study says.",
    "Fair point, I had not thought about that angle.",  # 9 words
    "I disagree, but I appreciate you taking the time.",  # 9 words
    "Sure, but that is not really what I meant.",  # 9 words
)
TEN_WORD_REPLIES = (
    "That is fair, but it ignores the commuting time entirely.",
    "I see what you mean, but the numbers say otherwise.",
)
QUOTABLE = OP_SENTENCES[:16]
URL_SNIPPETS = (
    "There is a decent summary here: https://en.wikipedia.org/wiki/Cost%E2%80%93benefit_analysis",
    "See https://www.pewresearch.org/short-reads/2023/04/12/ for the survey numbers.",
    "The OECD has a good overview at www.oecd.org/en/topics/policy-issues.html, worth a read.",
    "[This paper](https://www.nber.org/papers/w12345) looked at exactly that question.",
    "Relevant: [the Wikipedia article](https://en.wikipedia.org/wiki/Externality_(economics)) covers it well.",
    "Data here: HTTPS://OURWORLDINDATA.ORG/GRAPHER/EXAMPLE if you want to check yourself.",
    "There was a long thread about this last year: https://www.reddit.com/r/changemyview/comments/abc123/",
)
ENTITY_SNIPPETS = (
    "Prices &amp; wages both matter here.",
    "The gap is small (&lt; 5%) but it is consistent.",
    "Output went up &gt; 10% in the pilot, according to the authors.",
    "People call it &quot;common sense&quot; but it rarely is.",
    "It&#39;s not that simple, though.",
    "Costs&nbsp;and benefits do not land on the same people.",
)
FOOTNOTE = (
    "_____\n\n&gt; *Hello, users of CMV! This is a footnote from your moderators. We'd just like to remind "
    "you of a couple of things. Firstly, please* ***[read through our rules](http://www.reddit.com/r/"
    "changemyview/wiki/rules)***. *If you see a comment that has broken one, it is more effective to report "
    "it than downvote it. Speaking of which,* ***[downvotes don't change views](http://www.reddit.com/r/"
    "changemyview/wiki/guidelines#wiki_upvoting.2Fdownvoting)****! Any questions or concerns? Feel free to* "
    "***[message us](http://www.reddit.com/message/compose?to=/r/changemyview)***. *Happy CMVing!*"
)
DELTA_REPLIES = (
    "Δ You have changed my view on part of this. I still hold the rest, but this point is a good one.",
    "!delta That is a perspective I had not considered, and it does weaken my argument considerably.",
    "Okay, that is convincing enough for a delta: ∆. I did not know about that evidence before.",
)
DELTABOT_BODY = (
    "Confirmed: 1 delta awarded to /u/{user} ([{n}∆](/r/changemyview/wiki/user/{user})).\n\n"
    "^[Delta System Explained](https://www.reddit.com/r/changemyview/wiki/deltasystem) "
    "^| ^[Deltaboards](https://www.reddit.com/r/changemyview/wiki/deltaboards)"
)
AUTOMOD_BODY = (
    "/u/{op} (OP) has awarded 1 delta(s) in this post.\n\nAll comments that earned deltas (from OP or "
    "other users) are listed [here](/r/DeltaLog/comments/{sid}/), in /r/DeltaLog.\n\nPlease note that a "
    "change of view doesn't necessarily mean a reversal, or that the conversation has ended.\n\n"
    "^[Delta System Explained](https://www.reddit.com/r/changemyview/wiki/deltasystem) ^| "
    "^[Deltaboards](https://www.reddit.com/r/changemyview/wiki/deltaboards)"
)
MOD_BODIES = (
    "Sorry, your comment has been removed for breaking Rule 1:\n\n&gt; Direct responses to a CMV post must "
    "challenge at least one aspect of OP's stated view (however minor), or ask a clarifying question.\n\n"
    "If you would like to appeal, review our appeals process [here](https://www.reddit.com/r/changemyview/"
    "wiki/modstandards#wiki_appeal_process).",
    "Comment has been removed for breaking Rule 2:\n\n&gt; Don't be rude or hostile to other users. Your "
    "comment will be removed even if most of it is solid, another user was rude to you first, or you feel "
    "your remark was justified.",
)
OTHER_SUBREDDITS = (
    ("unpopularopinion", "t5_2tk0s"), ("AskReddit", "t5_2qh1i"), ("politics", "t5_2cneq"),
    ("changemyview2", "t5_3j1x0"), ("TrueUnpopularOpinion", "t5_2z8c1"),
)
ADJECTIVES = (
    "quiet", "maple", "salty", "rusty", "brave", "lazy", "grumpy", "sunny", "stoic", "curious", "wild",
    "sleepy", "atomic", "velvet", "crispy", "lunar", "humble", "noisy", "gentle", "fuzzy", "bitter", "swift",
)
NOUNS = (
    "river", "otter", "falcon", "badger", "teapot", "lantern", "pickle", "harbor", "meadow", "comet", "walrus",
    "cactus", "pretzel", "willow", "raven", "hedgehog", "bagel", "tractor", "marmot", "kettle", "sparrow",
)

# Body categories (indices into the body pools).
B_CH, B_OP, B_TP, B_SHORT, B_DEL, B_REM, B_DELTA, B_DELTABOT, B_AUTOMOD, B_MOD, B_OPTOP = range(11)
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _BASE36[r] + out
    return out or "0"


def _j(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# --------------------------------------------------------------------------- plan


class _Plan:
    """The forest: parallel arrays over nodes (submissions and comments), built from one RNG."""

    def __init__(self, n_nodes: int, seed: int) -> None:
        self.rng = rng = random.Random(seed)
        self.n_nodes = n_nodes
        self._make_users()
        self._make_pools()
        # Node arrays. kind: 0 submission, 1 comment.
        self.kind = array("b")
        self.sub = array("i")  # submission index
        self.parent = array("i")  # comment node index of the parent, -1 for top-level / submissions
        self.author = array("i")
        self.body = array("i")  # body pool index (comments) or root pool index (submissions)
        self.created = array("q")
        self.flags = array("b")  # bit 0: moderator, bit 1: admin, bit 2: stickied
        self.emitted = 0  # lines that will be written
        # Per submission.
        self.s_node: list[int] = []
        self.s_title: list[str] = []
        self.s_sr: list[int] = []  # -1: changemyview, -2: ChangeMyView, >= 0: OTHER_SUBREDDITS index
        self.s_emit: list[bool] = []
        self.s_link: list[bool] = []
        self.s_ncomments: list[int] = []
        self._grow(rng)

    # ..................................................................... users and texts

    def _make_users(self) -> None:
        rng = self.rng
        n_users = max(300, self.n_nodes // 12)
        names = ["[deleted]", "AutoModerator", "DeltaBot", "Ansuz07", "RedditExplorer", "huadpe", "Nepene"]
        self.n_special = 3
        self.mods = (3, 4, 5, 6)
        seen = set(names)
        while len(names) < n_users:
            style = rng.random()
            a, n = rng.choice(ADJECTIVES), rng.choice(NOUNS)
            if style < 0.4:
                name = f"{a}_{n}{rng.randint(1, 99)}"
            elif style < 0.7:
                name = f"{a.capitalize()}{n.capitalize()}{rng.randint(100, 9999)}"
            else:
                name = f"{n}-{a}-{rng.randint(1, 999)}"
            if name not in seen:
                seen.add(name)
                names.append(name)
        self.users = names
        # Pushshift fragment from "author" to "author_fullname" (keys in alphabetical order).
        frags = []
        for i, name in enumerate(names):
            if i == 0:
                frags.append('"author":"[deleted]","author_flair_css_class":null,"author_flair_text":null')
                continue
            deltas = rng.random()
            flair = f'"{int(1 / max(deltas, 0.02))}∆"' if deltas < 0.2 and i > 2 else "null"
            frags.append(
                f'"author":{_j(name)},"author_created_utc":{T0 - rng.randint(86400, 86400 * 3000)},'
                f'"author_flair_css_class":null,"author_flair_text":{flair},"author_fullname":"t2_{_base36(1_000_000 + i * 7)}"'
            )
        self.author_frag = frags

    def _paragraph(self, bank: tuple[str, ...], lo: int, hi: int) -> str:
        rng = self.rng
        sentences = rng.sample(bank, rng.randint(lo, min(hi, len(bank))))
        if len(sentences) > 3 and rng.random() < 0.5:
            cut = rng.randint(1, len(sentences) - 1)
            return " ".join(sentences[:cut]) + "\n\n" + " ".join(sentences[cut:])
        return " ".join(sentences)

    def _decorate(self, text: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.22:
            quote = rng.choice(QUOTABLE)
            text = f"&gt; {quote}\n\n{text}" if rng.random() < 0.8 else f"  &gt; {quote}\n&gt; {rng.choice(QUOTABLE)}\n\n{text}"
        if rng.random() < 0.12:
            text = f"{text} {rng.choice(URL_SNIPPETS)}"
        if rng.random() < 0.10:
            text = f"{text}\n\n{rng.choice(ENTITY_SNIPPETS)}"
        if rng.random() < 0.03:
            text = text.replace(" ", "  ", 1) + "\n\n\n"
        return text

    def _make_pools(self) -> None:
        """JSON-encoded bodies, grouped by category: ``pools[cat]`` is a list of global indices."""
        rng = self.rng
        bodies: list[str] = []
        pools: list[list[int]] = [[] for _ in range(11)]

        def add(cat: int, text: str) -> None:
            pools[cat].append(len(bodies))
            bodies.append(_j(text))

        for _ in range(3000):
            add(B_CH, self._decorate(self._paragraph(CHALLENGER_SENTENCES, 1, 7)))
        for _ in range(2000):
            add(B_OP, self._decorate(self._paragraph(OP_SENTENCES, 1, 6)))
        for _ in range(300):
            add(B_TP, self._decorate(self._paragraph(THIRD_PARTY_SENTENCES + CHALLENGER_SENTENCES[:8], 1, 3)))
        for text in SHORT_REPLIES:
            add(B_SHORT, text)
        for text in TEN_WORD_REPLIES:
            add(B_CH, text)
            add(B_OP, text)
        add(B_DEL, "[deleted]")
        add(B_REM, "[removed]")
        for text in DELTA_REPLIES:
            add(B_DELTA, text)
        for _ in range(200):
            add(B_OPTOP, "Edit: " + self._paragraph(OP_SENTENCES, 1, 3))
        for text in MOD_BODIES:
            add(B_MOD, text)
        self.bodies = bodies
        self.pools = pools
        # Roots: (JSON-encoded selftext) pool.
        roots = []
        for _ in range(2000):
            text = self._paragraph(OP_SENTENCES, 3, 9)
            r = rng.random()
            if r < 0.65:
                text = f"{text}\n\n{FOOTNOTE}"
            elif r < 0.70:
                text = f"{text}\n\n___\n\nEdit: {rng.choice(OP_SENTENCES)}\n\n{FOOTNOTE}"
            elif r < 0.72:
                text = f"{text}\n\n____\n\nEdit: {rng.choice(OP_SENTENCES)}"
            if rng.random() < 0.1:
                text = rng.choice(ENTITY_SNIPPETS) + " " + text
            if rng.random() < 0.05:
                text = text.replace("\n", "\r\n")
            roots.append(_j(text))
        self.R_DELETED, self.R_REMOVED, self.R_EMPTY, self.R_SHORT = range(len(roots), len(roots) + 4)
        roots += [_j("[deleted]"), _j("[removed]"), '""', _j("Title says it all, really. Change my view please.")]
        self.n_root_pool = 2000
        self.roots = roots

    # ..................................................................... forest

    def _add(self, kind: int, sub: int, parent: int, author: int, body: int, created: int, flags: int = 0) -> int:
        self.kind.append(kind)
        self.sub.append(sub)
        self.parent.append(parent)
        self.author.append(author)
        self.body.append(body)
        self.created.append(created)
        self.flags.append(flags)
        return len(self.kind) - 1

    def _user(self, *exclude: int) -> int:
        while True:
            u = self.rng.randrange(self.n_special + 4, len(self.users))
            if u not in exclude:
                return u

    def _grow(self, rng: random.Random) -> None:
        created = T0
        titles: list[str] = []
        while self.emitted < self.n_nodes:
            created += int(rng.expovariate(1 / 900)) + 1
            s = len(self.s_node)
            # Subreddit and whether the submission itself is in the dump.
            r = rng.random()
            sr = -1 if r < 0.947 else -2 if r < 0.95 else rng.randrange(len(OTHER_SUBREDDITS))
            emit = rng.random() >= 0.004
            # Title: a claim with a prefix variant; 2% repeat an earlier title exactly.
            if titles and rng.random() < 0.02:
                title = rng.choice(titles)
            else:
                prefix = rng.choices([p for p, _ in PREFIXES], [w for _, w in PREFIXES])[0]
                claim = (
                    rng.choice(CLAIMS)
                    if rng.random() < 0.3
                    else f"{rng.choice(SUBJECTS)} {rng.choice(PREDICATES)}"
                )
                title = prefix + claim + rng.choice(TITLE_SUFFIXES)
                if rng.random() < 0.02:
                    title = "  " + title.replace(" ", "   ", 1) + " "
                titles.append(title)
            # Root: mostly a normal text; deleted, removed, link posts and short roots happen.
            op = self._user()
            r = rng.random()
            link = False
            flags = 0
            if r < 0.04:
                root, op = self.R_DELETED, 0
            elif r < 0.10:
                root = self.R_REMOVED
            elif r < 0.12:
                root, link = self.R_EMPTY, True
            elif r < 0.125:
                root = self.R_SHORT
            else:
                root = rng.randrange(self.n_root_pool)
            if r > 0.998:
                op, flags = rng.choice(self.mods), 5  # moderator announcement, stickied
            node = self._add(0, s, -1, op, root, created, flags)
            self.s_node.append(node)
            self.s_title.append(_j(title))
            self.s_sr.append(sr)
            self.s_emit.append(emit)
            self.s_link.append(link)
            self.s_ncomments.append(0)
            if emit:
                self.emitted += 1
            self._grow_comments(rng, s, node, op, created)

    def _comment(self, s: int, parent: int, author: int, cat: int, created: int, flags: int = 0) -> int:
        pool = self.pools[cat]
        body = pool[self.rng.randrange(len(pool))] if len(pool) > 1 else pool[0]
        self.emitted += 1
        self.s_ncomments[s] += 1
        return self._add(1, s, parent, author, body, created, flags)

    def _grow_comments(self, rng: random.Random, s: int, root: int, op: int, t_sub: int) -> None:
        target = min(int(rng.paretovariate(1.25) * 9) - 8, 1500)
        made_before = self.emitted
        if op != 0 and rng.random() < 0.25 and self.emitted < self.n_nodes:  # AutoModerator sticky
            self._comment(s, -1, 1, B_MOD, t_sub + 60, flags=5)
        # Work stack: (parent node, parent depth, parent created, challenger, turns left).
        while self.emitted - made_before < target and self.emitted < self.n_nodes:
            t = t_sub + int(rng.expovariate(1 / 5400)) + 30
            r = rng.random()
            if r < 0.03:
                top = self._comment(s, -1, 0, B_DEL, t)
                if rng.random() < 0.4:
                    self._chain(rng, s, op, top, 1, t, 0, rng.randint(1, 4))
                continue
            if r < 0.06:
                self._comment(s, -1, self._user(op), B_REM, t)
                continue
            if r < 0.10:
                self._comment(s, -1, self._user(op), B_SHORT, t)
                continue
            if r < 0.13 and op != 0:  # OP's own top-level comment, sometimes answered
                top = self._comment(s, -1, op, B_OPTOP, t)
                if rng.random() < 0.5 and self.emitted < self.n_nodes:
                    x = self._user(op)
                    self._chain(rng, s, op, top, 1, t, x, rng.randint(1, 3), first_speaker=x)
                continue
            if r < 0.135:
                self._comment(s, -1, rng.choice(self.mods), B_MOD, t, flags=1)
                continue
            x = self._user(op)
            top = self._comment(s, -1, x, B_CH, t)
            u = rng.random()
            turns = 0 if u < 0.42 else 1 + int(rng.expovariate(1 / 2.2)) if u < 0.97 else rng.randint(8, 39)
            if turns:
                self._chain(rng, s, op, top, 1, t, x, turns)
            if rng.random() < 0.12:
                self._third_party(rng, s, op, top, t)

    def _third_party(self, rng: random.Random, s: int, op: int, parent: int, t: int) -> None:
        if self.emitted >= self.n_nodes:
            return
        tp = self._comment(s, parent, self._user(op), B_TP, t + int(rng.expovariate(1 / 1800)) + 20)
        if rng.random() < 0.3 and op != 0 and self.emitted < self.n_nodes:
            self._comment(s, tp, op, B_OP, t + 4000)

    def _chain(
        self, rng: random.Random, s: int, op: int, parent: int, depth: int, t: int, x: int, turns: int,
        first_speaker: int | None = None,
    ) -> None:
        """``turns`` alternating replies below ``parent`` (at ``depth``), OP answering X and back."""
        stack = [(parent, depth, t, turns)]
        while stack and self.emitted < self.n_nodes:
            parent, depth, t, left = stack.pop()
            speaker = op if (depth + 1) % 2 == 0 else x
            if first_speaker is not None:  # a chain below OP's own top-level comment
                speaker = first_speaker if depth % 2 == 1 else op
            created = t + int(rng.expovariate(1 / 2400)) + 20
            r = rng.random()
            flags = 0
            if speaker == 0:
                cat, author, valid = B_DEL, 0, False
            elif r < 0.025:
                cat, author, valid = B_DEL, 0, False
            elif r < 0.045:
                cat, author, valid = B_REM, speaker, False
            elif r < 0.085:
                cat, author, valid = B_SHORT, speaker, False
            elif r < 0.09:
                cat, author, valid, flags = B_MOD, speaker, False, 1
            elif speaker == op and x != 0 and r < 0.11:
                cat, author, valid = B_DELTA, op, True
            else:
                cat, author, valid = (B_OP if speaker == op else B_CH), speaker, True
            node = self._comment(s, parent, author, cat, created, flags)
            if cat == B_DELTA and self.emitted < self.n_nodes:
                self._comment(s, node, 2, B_MOD, created + 45, flags=1)  # DeltaBot; body replaced below
                self.body[-1] = -1 - x  # marker: DeltaBot confirmation for user x
            if left > 1 and (valid or rng.random() < 0.3):
                stack.append((node, depth + 1, created, left - 1))
            if valid and left > 1 and rng.random() < 0.06:  # the same speaker answers twice
                stack.append((parent, depth, t + 300, rng.randint(1, left)))
            if rng.random() < 0.06:
                self._third_party(rng, s, op, node, created)
            if valid and speaker != op and rng.random() < 0.02 and self.emitted < self.n_nodes:
                self._comment(s, node, speaker, B_CH, created + 120)  # X adds to their own comment


# --------------------------------------------------------------------------- writing

_COMMENT = (
    '{"all_awardings":[],"associated_award":null,%s,"author_patreon_flair":false,"body":%s,'
    '"controversiality":%d,"created_utc":%d,"distinguished":%s,"edited":%s,"gilded":%d,"gildings":{},'
    '"id":"%s","is_submitter":%s,"link_id":"t3_%s","locked":false,"no_follow":%s,"parent_id":"%s",'
    '"permalink":"/r/%s/comments/%s/%s/%s/","retrieved_on":%d,"score":%d,"send_replies":true,"stickied":%s,'
    '"subreddit":"%s","subreddit_id":"%s","subreddit_type":"public","total_awards_received":0}\n'
)
_SUBMISSION = (
    '{"all_awardings":[],"allow_live_comments":false,%s,"author_patreon_flair":false,"author_premium":false,'
    '"awarders":[],"can_gild":true,"category":null,"content_categories":null,"contest_mode":false,'
    '"created_utc":%d,"discussion_type":null,"distinguished":%s,"domain":"%s","edited":%s,"gilded":0,'
    '"gildings":{},"hidden":false,"id":"%s","is_created_from_ads_ui":false,"is_crosspostable":true,'
    '"is_meta":false,"is_original_content":false,"is_reddit_media_domain":false,"is_robot_indexable":true,'
    '"is_self":%s,"is_video":false,"link_flair_background_color":"","link_flair_css_class":%s,'
    '"link_flair_richtext":[],"link_flair_text":%s,"link_flair_text_color":"dark","link_flair_type":"text",'
    '"locked":false,"media":null,"media_embed":{},"media_only":false,"name":"t3_%s","no_follow":%s,'
    '"num_comments":%d,"num_crossposts":0,"over_18":false,"parent_whitelist_status":"all_ads",'
    '"permalink":"/r/%s/comments/%s/%s/","pinned":false,"pwls":6,"quarantine":false,"removed_by_category":%s,'
    '"retrieved_on":%d,"score":%d,"secure_media":null,"secure_media_embed":{},"selftext":%s,'
    '"send_replies":true,"spoiler":false,"stickied":%s,"subreddit":"%s","subreddit_id":"%s",'
    '"subreddit_subscribers":%d,"subreddit_type":"public","thumbnail":"%s","title":%s,"total_awards_received":0,'
    '"treatment_tags":[],"upvote_ratio":%s,"url":%s,"view_count":null,"whitelist_status":"all_ads","wls":6}\n'
)
_DIST = ("null", '"moderator"', '"admin"')
_TF = ("false", "true")


def _slug(title_json: str) -> str:
    words = json.loads(title_json).lower().split()
    words = [w for w in ("".join(c for c in w if c.isalnum()) for w in words) if w and w != "cmv"]
    return "cmv_" + "_".join(words[:8])


class _Writer:
    def __init__(self, path: Path, compression: str, level: int | None, threads: int, window_log: int | None):
        self.path = path
        self.raw = open(path, "wb")
        if compression == "zst":
            lvl = 3 if level is None else level
            if window_log is not None:
                params = zstandard.ZstdCompressionParameters.from_level(
                    lvl, window_log=window_log, enable_ldm=True, threads=threads
                )
                cctx = zstandard.ZstdCompressor(compression_params=params)
            else:
                cctx = zstandard.ZstdCompressor(level=lvl, threads=threads)
            self.stream: BinaryIO = cctx.stream_writer(self.raw, closefd=False)  # type: ignore[assignment]
        elif compression == "gz":
            self.stream = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, compresslevel=6 if level is None else level, mtime=0)  # type: ignore[assignment]
        elif compression == "none":
            self.stream = self.raw
        else:
            raise ValueError(f"compression must be zst, gz or none, not {compression!r}")
        self.buffer: list[str] = []
        self.size = 0

    def add(self, line: str) -> None:
        self.buffer.append(line)
        if len(self.buffer) >= 8192:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            data = "".join(self.buffer).encode("utf-8")
            self.size += len(data)
            self.stream.write(data)
            self.buffer = []

    def close(self) -> None:
        self.flush()
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()


def generate_dump(
    out_dir: Path,
    n_nodes: int,
    seed: int = 0,
    compression: str = "zst",
    split_files: bool = True,
    *,
    level: int | None = None,
    threads: int = 2,
    window_log: int | None = None,
) -> list[Path]:
    """Write a CMV dump of ``n_nodes`` lines into ``out_dir``; return the files written.

    ``split_files``: ``submissions.jsonl[.zst|.gz]`` + ``comments.jsonl[...]`` (in that order), else
    one ``reddit.jsonl[...]`` with submissions and comments mixed in created_utc order.
    ``compression``: ``zst`` (level 3 by default, ``threads`` workers; ``window_log=31`` gives a
    long window like the Pushshift dumps, which readers must allow), ``gz`` (level 6) or ``none``.
    """
    if compression not in ("zst", "gz", "none"):
        raise ValueError(f"compression must be zst, gz or none, not {compression!r}")
    if n_nodes < 0:
        raise ValueError("n_nodes must be >= 0")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = _Plan(n_nodes, seed)
    ext = {"zst": ".jsonl.zst", "gz": ".jsonl.gz", "none": ".jsonl"}[compression]
    if split_files:
        paths = [out_dir / f"submissions{ext}", out_dir / f"comments{ext}"]
    else:
        paths = [out_dir / f"reddit{ext}"]
    writers = [_Writer(p, compression, level, threads, window_log) for p in paths]
    sub_writer, com_writer = (writers[0], writers[1]) if split_files else (writers[0], writers[0])
    try:
        _write(plan, sub_writer, com_writer)
    finally:
        for w in writers:
            w.close()
    return paths


def _write(plan: _Plan, sub_writer: _Writer, com_writer: _Writer) -> None:
    n = len(plan.kind)
    kind, sub, parent, author, body, created, flags = (
        plan.kind, plan.sub, plan.parent, plan.author, plan.body, plan.created, plan.flags,
    )
    order = sorted(range(n), key=created.__getitem__)
    # Ids increase with time, like Reddit's: submissions and comments have their own counters.
    ids: list[str] = [""] * n
    next_sub, next_com = int("2rb6kx", 36), int("cnf0a2b", 36)
    for i in order:
        step = 1 + ((i * 2654435761) >> 9) % 3
        if kind[i] == 0:
            next_sub += step
            ids[i] = _base36(next_sub)
        else:
            next_com += step
            ids[i] = _base36(next_com)
    users, frags, bodies, roots = plan.users, plan.author_frag, plan.bodies, plan.roots
    s_node, s_sr, s_emit = plan.s_node, plan.s_sr, plan.s_emit
    subreddits = []
    for sr in s_sr:
        name, sr_id = ("changemyview", CMV_SUBREDDIT_ID) if sr == -1 else ("ChangeMyView", CMV_SUBREDDIT_ID) if sr == -2 else OTHER_SUBREDDITS[sr]
        subreddits.append((name, sr_id))
    slugs = [_slug(t) for t in plan.s_title]
    deltabot_counts: dict[int, int] = {}
    for i in order:
        s = sub[i]
        if kind[i] == 0:
            if not s_emit[s]:
                continue
            sid = ids[i]
            sr_name, sr_id = subreddits[s]
            t = created[i]
            h = (i * 2654435761) & 0xFFFFFFFF
            a = author[i]
            root = body[i]
            removed = root == plan.R_REMOVED
            link = plan.s_link[s]
            url = (
                _j(f"https://www.theguardian.com/commentisfree/{2015 + h % 8}/article-{h % 100000}")
                if link
                else _j(f"https://www.reddit.com/r/{sr_name}/comments/{sid}/{slugs[s]}/")
            )
            sub_writer.add(
                _SUBMISSION
                % (
                    frags[a],
                    t,
                    _DIST[1 if flags[i] & 1 else 0],
                    "theguardian.com" if link else f"self.{sr_name}",
                    str(t + 600 + h % 7200) if h % 19 == 0 else "false",
                    sid,
                    _TF[not link],
                    '"delta"' if h % 11 == 0 else "null",
                    '"Δ(s) from OP"' if h % 11 == 0 else "null",
                    sid,
                    _TF[h % 5 == 0],
                    plan.s_ncomments[s],
                    sr_name,
                    sid,
                    slugs[s],
                    '"moderator"' if removed else '"deleted"' if root == plan.R_DELETED else "null",
                    t + 86400 * 2 + h % 86400,
                    (h >> 4) % 2000 - 50,
                    roots[root],
                    _TF[bool(flags[i] & 4)],
                    sr_name,
                    sr_id,
                    3_000_000 + (t - T0) // 20,
                    "default" if link else "self",
                    plan.s_title[s],
                    f"0.{50 + (h >> 3) % 50}",
                    url,
                )
            )
        else:
            sr_name, sr_id = subreddits[s]
            sid = ids[s_node[s]]
            p = parent[i]
            parent_id = "t1_" + ids[p] if p >= 0 else "t3_" + sid
            a = author[i]
            b = body[i]
            if b < 0:  # DeltaBot confirmation for a challenger
                user = -1 - b
                deltabot_counts[user] = deltabot_counts.get(user, 0) + 1
                text = _j(DELTABOT_BODY.format(user=users[user], n=deltabot_counts[user]))
            elif a == 1 and flags[i] & 4:
                text = _j(AUTOMOD_BODY.format(op=users[author[s_node[s]]], sid=sid))
            else:
                text = bodies[b]
            t = created[i]
            h = (i * 2654435761) & 0xFFFFFFFF
            cid = ids[i]
            com_writer.add(
                _COMMENT
                % (
                    frags[a],
                    text,
                    1 if h % 17 == 0 else 0,
                    t,
                    _DIST[1 if flags[i] & 1 else 2 if flags[i] & 2 else 0],
                    str(t + 300 + h % 5000) if h % 23 == 0 else "false",
                    1 if h % 997 == 0 else 0,
                    cid,
                    _TF[a == author[s_node[s]] and a != 0],
                    sid,
                    _TF[h % 7 == 0],
                    parent_id,
                    sr_name,
                    sid,
                    slugs[s],
                    cid,
                    t + 86400 * 2 + h % 86400,
                    (h >> 5) % 60 - 8,
                    _TF[bool(flags[i] & 4)],
                    sr_name,
                    sr_id,
                )
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a synthetic Pushshift-style r/ChangeMyView dump.")
    parser.add_argument("--nodes", type=int, required=True, help="lines to write (submissions + comments)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compression", choices=("zst", "gz", "none"), default="zst")
    parser.add_argument("--single-file", action="store_true", help="one mixed file instead of two")
    parser.add_argument("--threads", type=int, default=2, help="zstd worker threads (output does not depend on it)")
    parser.add_argument("--window-log", type=int, default=None, help="zstd window log (31 = Pushshift's --long=31)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = generate_dump(
        args.out, args.nodes, seed=args.seed, compression=args.compression, split_files=not args.single_file,
        threads=args.threads, window_log=args.window_log,
    )
    elapsed = time.perf_counter() - start
    for path in paths:
        print(f"{path}\t{path.stat().st_size} bytes")
    print(f"{args.nodes} nodes in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
