from rebuild.cli.main import main

main()
