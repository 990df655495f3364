"""Where and how stages run besides in-process: in containers, rebuilt for `reproduce`, as experiments."""
