"""tvote verifier: re-checks an exported election record; never imports the server side."""
