"""The words the demo dataset is made of: threads, questions and answers per source, log lines."""

from __future__ import annotations

# source, source_details, name, dataset_format, url pattern, framings, (question, answer) pairs
SESSIONS = [
    (
        "4chan",
        "boards=g",
        "/g/ technology threads",
        "standard",
        "https://boards.4chan.org/g/thread/{id}",
        [
            (
                "Is it worth running a local LLM on a 3060 12GB?",
                (
                    "Yes for 7B-8B models at 4-bit. Expect 30-40 tokens/s with llama.cpp; 13B fits but "
                    "gets slow once the context grows."
                ),
            ),
            (
                "What's the least painful Linux distro for an old ThinkPad X220?",
                "Debian stable with XFCE. Everything works out of the box, and it stays out of your way for years.",
            ),
            (
                "How do I stop my SSD from dying early?",
                (
                    "You mostly don't need to. Keep 10-20% free so wear levelling has room, leave TRIM "
                    "on, and keep backups anyway."
                ),
            ),
            (
                "Why does everyone here hate Electron apps?",
                (
                    "Each one ships its own copy of Chromium, so a chat client can eat 500 MB of RAM. "
                    "Convenient for developers, heavy for users."
                ),
            ),
            (
                "Best way to self-host a password manager?",
                (
                    "Vaultwarden in Docker behind a reverse proxy with TLS. Back up the data folder "
                    "nightly and test a restore once."
                ),
            ),
            (
                "Is ECC RAM actually necessary for a home NAS?",
                (
                    "Not strictly, but ZFS trusts memory. If the board and CPU support ECC for little "
                    "extra money, take it."
                ),
            ),
            (
                "What does quantization actually do to a model?",
                (
                    "It stores the weights in fewer bits (say 4 instead of 16). Memory drops about 4x; "
                    "quality drops a little, mostly on hard reasoning."
                ),
            ),
        ],
    ),
    (
        "4chan",
        "boards=ck",
        None,
        "standard",
        "https://boards.4chan.org/ck/thread/{id}",
        [
            (
                "How do I get a proper sear on a steak without setting off the smoke alarm?",
                (
                    "Pat it bone dry, salt it an hour ahead, use a cast iron pan on high with a thin "
                    "film of high smoke point oil, and open a window."
                ),
            ),
            (
                "Why is my sourdough so dense?",
                (
                    "Usually underproofed. Let the bulk ferment go until the dough has risen about 50% "
                    "and feels airy, not by the clock."
                ),
            ),
            (
                "Is MSG actually bad for you?",
                "No. It's sodium plus glutamate, which is in tomatoes and parmesan anyway. Use it like salt.",
            ),
            (
                "Cheap knife recommendation for a beginner?",
                (
                    "A Victorinox Fibrox 8-inch chef's knife. Costs little, holds an edge, and you won't "
                    "cry when you chip it."
                ),
            ),
        ],
    ),
    (
        "reddit",
        "url=https://www.reddit.com/r/learnpython/",
        "r/learnpython Q&A",
        "standard",
        "https://www.reddit.com/r/learnpython/comments/{id}/",
        [
            (
                "What's the difference between a list and a tuple?",
                (
                    "Lists are mutable and meant for collections that change; tuples are immutable, "
                    "hashable if their items are, and good for fixed records."
                ),
            ),
            (
                "How do I read a large CSV without running out of memory?",
                (
                    "Iterate with the csv module row by row, or use pandas.read_csv with "
                    "chunksize=100_000 and process each chunk."
                ),
            ),
            (
                "Why does my function keep the values from the last call?",
                (
                    "You used a mutable default argument like def f(items=[]). Use items=None and create "
                    "the list inside the function."
                ),
            ),
            (
                "When should I use a virtual environment?",
                (
                    "Always, one per project: python -m venv .venv, activate it, and pin your "
                    "dependencies in requirements.txt."
                ),
            ),
            (
                "How do I make an HTTP request and handle errors?",
                (
                    "Use requests.get(url, timeout=10), then response.raise_for_status() inside "
                    "try/except requests.RequestException."
                ),
            ),
            (
                "What does if __name__ == '__main__' do?",
                "It runs the block only when the file is executed directly, not when it is imported as a module.",
            ),
            (
                "Is it bad to use global variables?",
                (
                    "Mostly, yes: they make functions depend on hidden state. Pass values in as "
                    "arguments and return results instead."
                ),
            ),
            (
                "How can I speed up a slow loop over a million items?",
                (
                    "Profile first. Then move the work into built-ins, comprehensions or numpy, and "
                    "avoid repeated lookups inside the loop."
                ),
            ),
        ],
    ),
    (
        "reddit",
        "url=https://www.reddit.com/r/homelab/",
        "r/homelab",
        "standard",
        "https://www.reddit.com/r/homelab/comments/{id}/",
        [
            (
                "Proxmox or TrueNAS for a first home server?",
                "Proxmox if you want VMs and containers, with TrueNAS as a VM for storage if you need it. Start small.",
            ),
            (
                "How loud is a used enterprise server in an apartment?",
                (
                    "Too loud for a living space: a 1U box idles around 50 dB. Look at mini PCs or a "
                    "tower workstation instead."
                ),
            ),
            (
                "What UPS size do I need?",
                (
                    "Add up the idle and peak watts of what you plug in, double it, and pick a unit that "
                    "gives you ten minutes to shut down cleanly."
                ),
            ),
            (
                "Is a separate VLAN for IoT devices worth it?",
                (
                    "Yes. Put them on their own VLAN with no access to your main network, only to the "
                    "internet or the controller they need."
                ),
            ),
            (
                "How do I back up my homelab properly?",
                (
                    "3-2-1: three copies, two different media, one off-site. Automate it and restore "
                    "something every few months."
                ),
            ),
        ],
    ),
    (
        "stackexchange",
        "site=stackoverflow tagged=python",
        "Stack Overflow [python]",
        "chatml",
        "https://stackoverflow.com/questions/{id}",
        [
            (
                "How do I merge two dictionaries in a single expression?",
                "In Python 3.9+ use z = x | y. In older versions, z = {**x, **y}. Keys in y win.",
            ),
            (
                "How can I check if a file exists without exceptions?",
                "Use pathlib: Path('data.txt').is_file(). Beware that the file may vanish right after you check.",
            ),
            (
                "What is the difference between @staticmethod and @classmethod?",
                (
                    "A classmethod receives the class as its first argument and suits alternative "
                    "constructors; a staticmethod receives nothing implicit."
                ),
            ),
            (
                "How do I sort a list of dictionaries by a value of the dictionary?",
                "sorted(items, key=lambda d: d['name']), or operator.itemgetter('name') as the key.",
            ),
            (
                "Why is 'x is 256' True but 'x is 257' False?",
                "CPython caches small integers from -5 to 256. Compare values with ==; 'is' compares identity.",
            ),
            (
                "How do I get the current time in UTC?",
                "datetime.now(timezone.utc) gives an aware datetime; avoid utcnow(), which returns a naive one.",
            ),
        ],
    ),
    (
        "stackexchange",
        "site=unix.stackexchange.com",
        "Unix & Linux",
        "standard",
        "https://unix.stackexchange.com/questions/{id}",
        [
            (
                "How do I find which process is listening on a port?",
                "Run sudo ss -ltnp 'sport = :8080' or sudo lsof -i :8080.",
            ),
            (
                "How can I delete files older than 30 days?",
                "find /path -type f -mtime +30 -print first to check, then the same with -delete.",
            ),
            (
                "What's the difference between a hard link and a symlink?",
                (
                    "A hard link is another name for the same inode; a symlink is a small file holding a "
                    "path, and it breaks if the target moves."
                ),
            ),
            (
                "How do I keep a command running after I log out?",
                "Start it in tmux or screen, or run it as a systemd service. nohup works for quick one-offs.",
            ),
        ],
    ),
    (
        "synthetic",
        "source=docs/fine-tuning-guide.pdf model=unsloth/Llama-3.2-3B-Instruct gen_type=qa",
        "Fine-tuning guide (synthetic Q&A)",
        "standard",
        None,
        [
            (
                "What is LoRA and why is it used for fine-tuning?",
                (
                    "LoRA trains small low-rank matrices added to the frozen weights, so a 7B model can "
                    "be adapted on one consumer GPU."
                ),
            ),
            (
                "What learning rate is typical for LoRA fine-tuning?",
                "Around 2e-4 with a short warmup and linear or cosine decay; lower it if the loss spikes.",
            ),
            (
                "How many examples do I need to fine-tune a model?",
                (
                    "A few hundred good examples already change style and format; thousands help for new "
                    "skills. Quality matters more than count."
                ),
            ),
            (
                "What does gradient accumulation do?",
                (
                    "It adds up gradients over several small batches before each update, giving the "
                    "effect of a larger batch in less memory."
                ),
            ),
            (
                "How do I know if my model is overfitting?",
                (
                    "Training loss keeps falling while validation loss rises. Stop earlier, add data, or "
                    "lower the number of epochs."
                ),
            ),
            (
                "Why use 4-bit quantization during training (QLoRA)?",
                (
                    "It keeps the frozen base weights in 4 bits, cutting memory so larger models fit, "
                    "while LoRA weights train in higher precision."
                ),
            ),
        ],
    ),
]

QUESTION_FRAMINGS = ["{}", "Quick question: {}", "{} Thanks in advance.", "Noob here. {}", "{} (asking for a project)"]
ANSWER_FRAMINGS = ["{}", "{} Hope that helps.", "{} Source: did this last week.", "Short answer: {}"]

LOG_EVENTS = [
    # level, logger, module, function, message
    ("INFO", "finefoundry.scrapers.reddit", "reddit_scraper", "scrape", "Fetched {n} comments from r/{sub}"),
    (
        "INFO",
        "finefoundry.scrapers.fourchan",
        "fourchan_scraper",
        "scrape_board",
        "Board /{board}/: {n} threads, {m} pairs kept",
    ),
    ("INFO", "finefoundry.scrapers.stackexchange", "stackexchange_scraper", "fetch", "Fetched {n} answered questions"),
    ("INFO", "finefoundry.synthetic", "synthetic", "run_synthetic_generation", "Generated {n} pairs from chunk {m}"),
    ("INFO", "finefoundry.training", "local_train", "start", "Training started on {gpu}"),
    ("INFO", "finefoundry.db", "scraped_data", "add_scraped_pairs", "Saved {n} pairs to session {m}"),
    ("DEBUG", "finefoundry.ui", "scrape_tab", "on_start", "Scrape settings: max_pairs={n} delay=1.0"),
    ("DEBUG", "finefoundry.training", "local_train", "build_dataset", "Tokenised {n} examples, max length {m}"),
    ("WARNING", "finefoundry.scrapers.reddit", "reddit_scraper", "scrape", "Rate limited; sleeping {n} s"),
    ("WARNING", "finefoundry.synthetic", "synthetic", "curate", "Dropped {n} pairs below quality threshold 7.5"),
    ("WARNING", "finefoundry.training", "local_train", "start", "bf16 not supported on {gpu}; using fp16"),
]

ERROR_EVENTS = [
    (
        "finefoundry.scrapers.reddit",
        "reddit_scraper",
        "fetch_json",
        "Request failed for https://www.reddit.com/r/{sub}/.json",
        'Traceback (most recent call last):\n  File "src/scrapers/reddit_scraper.py", line 88, in fetch_json\n'
        "    response.raise_for_status()\n"
        '  File "requests/models.py", line 1024, in raise_for_status\n'
        "    raise HTTPError(http_error_msg, response=self)\n"
        "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: "
        "https://www.reddit.com/r/{sub}/.json",
    ),
    (
        "finefoundry.training",
        "local_train",
        "train",
        "Training failed: CUDA out of memory",
        'Traceback (most recent call last):\n  File "src/helpers/local_train.py", line 212, in train\n'
        "    trainer.train()\n"
        '  File "transformers/trainer.py", line 1938, in train\n'
        "    return inner_training_loop(\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total capacity "
        "of 11.76 GiB of which 1.02 GiB is free.",
    ),
    (
        "finefoundry.synthetic",
        "synthetic",
        "parse_response",
        "Model returned invalid JSON for chunk {m}",
        'Traceback (most recent call last):\n  File "src/helpers/synthetic.py", line 143, in parse_response\n'
        "    pairs = json.loads(text)\n"
        "json.decoder.JSONDecodeError: Expecting ',' delimiter: line 7 column 5 (char 412)",
    ),
]

SUBREDDITS = ["learnpython", "homelab", "LocalLLaMA", "MachineLearning"]
BOARDS = ["g", "ck", "sci"]
GPUS = ["NVIDIA GeForce RTX 3060", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 4090"]
