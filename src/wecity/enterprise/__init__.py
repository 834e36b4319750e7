"""Enterprise services (industry internet): the enterprise register, policies as code, matching, 免申即享 and 快申快享."""
