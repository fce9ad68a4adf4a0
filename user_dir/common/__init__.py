"""Method-agnostic pieces shared by two or more methods."""
